"""Which tasks and instances a command reads: the ``data`` section of its config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class DataConfig:
    """Tasks and the instances drawn from them."""

    tasks: str = "bigbench:bbl-mc"
    """Task spec: bigbench:NAME[,NAME][@ROOT] (suites bbl, bbl-sun14, bbl-mc), superni:PATH[@SPLITFILE],
    mmlu:PATH[@DEVPATH], jsonl:PATH, lmeval:NAME[,NAME][@INCLUDE_PATH] (lm-evaluation-harness multiple-choice
    tasks or groups, zero-shot), hf:SOURCE[:CONFIG][@SPLIT][#CARD] (a Hugging Face dataset id, save_to_disk
    folder or Parquet/JSON/CSV file, mapped by a task card; built-in: cais/mmlu, hails/bigbench,
    Muennighoff/natural-instructions); join several with '+'."""
    split: Literal["train", "val", "test"] = "test"
    """Split the instances come from."""
    limit: int | None = None
    """Seeded sample of at most N instances per task (None: all)."""
    shuffle_options: bool = True
    """Shuffle BIG-bench options (seeded, recorded)."""
    label_options: bool = False
    """Score classification tasks (SuperNI) by rank classification over their label space instead of by
    generation: each instance whose reference is a label gets the label space as its options."""
