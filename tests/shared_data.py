"""Where tests find the shared reference data (SuperNI tasks, MMLU, instruction collections).

``$HEEDFUL_SHARED_DATA`` if set, else ``shared/data`` beside the checkout, else
``/work/shared/data`` (a clone made elsewhere on the development machine). Tests that need
the data skip, naming this path, when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _locate() -> Path:
    if os.environ.get("HEEDFUL_SHARED_DATA"):
        return Path(os.environ["HEEDFUL_SHARED_DATA"])
    beside = REPO_ROOT.parent / "shared" / "data"
    for candidate in (beside, Path("/work/shared/data")):
        if candidate.is_dir():
            return candidate
    return beside


SHARED_DATA = _locate()
