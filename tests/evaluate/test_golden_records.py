"""Records of fixed evaluations on a tiny random model equal the committed golden copies.

The guard for reshaping the core: prompts, scored options, log-likelihoods (to 1e-6),
predictions and scores must not move. Runs cover BIG-bench (shuffled options, designer and
built-in phrasings), SuperNI encodings with Kung & Peng's alterations, one-shot prompts from
an instruction collection, Sun et al.'s generate-then-score, and open generation.

After a change that is meant to alter records, regenerate with
``HEEDFUL_UPDATE_GOLDEN=1 pytest tests/evaluate/test_golden_records.py`` and say why in the commit.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig
from shared_data import SHARED_DATA

from .conftest import write_collection, write_tasks

GOLDEN = Path(__file__).parent.parent / "golden" / "eval-records.jsonl"
SUPERNI = SHARED_DATA / "superni"
SUPERNI_TASK = SUPERNI / "tasks" / "task1344_glue_entailment_classification.json"
SUPERNI_OPEN = SUPERNI / "tasks" / "task1356_xlsum_title_generation.json"
# Fields compared exactly (scores are fractions, 0..1); log-likelihoods to LOGLIK_TOL nats.
EXACT = ("task", "instruction_id", "instruction_kind", "instance_id", "prompt", "options", "references",
         "prediction", "prediction_index", "gold", "metric", "score", "exact_match", "rouge_l")
LOGLIK_TOL = 2e-5
# float32 carries about 7 significant digits: a summed log-likelihood (-5 to -117 nats here)
# moves by up to 1e-5 when the kernels' summation order changes (threads, padding).
LOGLIK_REL = 1e-7


def _runs(inputs: Path) -> dict[str, EvalConfig]:
    tasks, collection = write_tasks(inputs / "tasks.jsonl"), write_collection(inputs / "coll.jsonl")
    return {
        "bigbench": EvalConfig(
            data=DataConfig(tasks="bigbench:winowhy,strange_stories:multiple_choice", limit=2),
            prompts=PromptConfig(instructions="designer,heedful"),
        ),
        "superni-altered": EvalConfig(
            data=DataConfig(tasks=f"superni:{SUPERNI_TASK}", limit=3),
            prompts=PromptConfig(instructions="superni:def+pos2", perturb=["none", "simplified", "delusive"],
                                 label_spaces=str(SUPERNI / "label_space.json")),
            baselines=True,
        ),
        "jsonl-one-shot": EvalConfig(
            data=DataConfig(tasks=f"jsonl:{tasks}", split="test", limit=3),
            prompts=PromptConfig(instructions=str(collection), shots=1),
        ),
        "sun-scoring": EvalConfig(
            data=DataConfig(tasks=f"jsonl:{tasks}", limit=2), prompts=PromptConfig(instructions=str(collection)),
            scoring=ScoringConfig(rank="sun"),
        ),
        "generation": EvalConfig(
            data=DataConfig(tasks=f"superni:{SUPERNI_OPEN}", limit=2), prompts=PromptConfig(instructions="superni:def"),
            scoring=ScoringConfig(max_new_tokens=8),
        ),
    }


def _records(tiny_llama_dir: Path, tmp_path: Path) -> list[dict]:
    rows = []
    for name, config in _runs(tmp_path).items():
        config = dataclasses.replace(config, model=ModelConfig(name=str(tiny_llama_dir)), out=str(tmp_path / name))
        result = evaluate(config)
        for record in result.records:
            fields = record.to_dict()
            rows.append({"run": name, **{k: fields[k] for k in ("logliks", *EXACT)}})
    return rows


@pytest.mark.skipif(not SUPERNI_TASK.is_file(), reason=f"SuperNI reference data not found at {SUPERNI}")
def test_records_equal_the_golden_copy(tiny_llama_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("bigbench", reason="the BIG-bench run needs: pip install --no-deps bigbench")
    got = _records(tiny_llama_dir, tmp_path)
    if os.environ.get("HEEDFUL_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in got), encoding="utf-8")
    want = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(want)
    key = lambda r: (r["run"], r["task"], r["instruction_id"], r["instance_id"])  # noqa: E731
    for g, w in zip(sorted(got, key=key), sorted(want, key=key)):
        assert {k: g[k] for k in EXACT} == {k: w[k] for k in EXACT}, key(w)
        if w["logliks"] is None:
            assert g["logliks"] is None
        else:
            assert g["logliks"] == pytest.approx(w["logliks"], abs=LOGLIK_TOL, rel=LOGLIK_REL), key(w)
    assert {r["run"] for r in want} == set(_runs(tmp_path))
