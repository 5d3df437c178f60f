import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from heedful.evaluate import metrics as M
from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.records import Record
from heedful.evaluate.runner import evaluate
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.prompts.demos import continuation_strings
from heedful.tasks.config import DataConfig


def test_continuation_strings_join_with_a_space_unless_prompt_ends_in_whitespace():
    assert continuation_strings("Answer:", ["A", "B"]) == (" A", " B")
    assert continuation_strings("A: ", ["yes"]) == ("yes",)
    assert continuation_strings("Options\n", ["x"]) == ("x",)


def test_evaluate_writes_records_results_and_reuses_cache(tmp_path, tiny_llama_dir, inputs):
    from heedful.models import ChoiceRequest, load_model

    tasks_file, coll = inputs
    config = EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks=f"jsonl:{tasks_file}"), prompts=PromptConfig(instructions=f"{coll}"), scoring=ScoringConfig(max_new_tokens=4, batch_size=2), out=str(tmp_path / "out"))
    backend = load_model(str(tiny_llama_dir))
    result = evaluate(config, backend=backend, show_progress=False)
    # 2 instructions apply to "colors" (6 instances); none to "echo" would be an error, so
    # restrict: the collection only targets colors -> echo gets no instruction.
    assert {r.task for r in result.records} == {"colors"}
    assert len(result.records) == 2 * 6
    lines = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 12
    rec = json.loads(lines[0])
    for field in ("task", "instruction_id", "instruction_kind", "instance_id", "prompt", "options", "logliks", "prediction", "gold", "score"):
        assert field in rec
    # records.jsonl holds the records as to_dict writes them, less the cache key
    assert Record.from_dict(rec) == dataclasses.replace(result.records[0], output_key="")
    assert "output_key" not in rec
    # Per-option log-likelihoods are exactly what the backend computes for the stored strings.
    direct = backend.loglikelihoods([ChoiceRequest(rec["prompt"], tuple(rec["options"]))])[0]
    assert rec["logliks"] == pytest.approx(list(direct.logliks), abs=1e-5)
    assert rec["score"] == float(rec["logliks"].index(max(rec["logliks"])) == rec["gold"])
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["model"]["name"] == str(tiny_llama_dir)
    assert results["environment"]["packages"]["torch"]
    assert set(results["tasks"]["colors"]) == {"T/1", "T/2"}
    assert results["tasks"]["colors"]["T/1"]["n"] == 6
    # A second identical run computes nothing and gives identical records.
    again = evaluate(config, backend=backend, show_progress=False)
    assert again.computed == 0
    assert again.records == result.records


def test_generation_tasks_are_scored_with_metrics(tmp_path, tiny_llama_dir, inputs):
    tasks_file, _ = inputs
    coll = tmp_path / "gen.jsonl"
    coll.write_text(json.dumps({"id": "G/1", "task": "echo", "task_type": "QA", "kind": "observed", "collection": "Test",
                                "template": "{input}:", "extract": None, "options": None, "choice_fields": None,
                                "extra_fields": None, "label_map": None, "fixed_options": None, "answer": "text",
                                "wrapper": None, "notes": []}) + "\n")
    config = EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks=f"jsonl:{tasks_file}"), prompts=PromptConfig(instructions=str(coll)), scoring=ScoringConfig(max_new_tokens=3), out=str(tmp_path / "out"))
    result = evaluate(config, show_progress=False)
    assert len(result.records) == 3
    for rec in result.records:
        assert rec.options is None and rec.logliks is None
        # every score is a fraction; score is the task's metric
        assert rec.metric in ("exact_match", "rougeL")
        assert rec.score == {"exact_match": rec.exact_match, "rougeL": rec.rouge_l}[rec.metric]
        assert 0.0 <= rec.exact_match <= 1.0 and 0.0 <= rec.rouge_l <= 1.0
        assert rec.score == M.score_generation(rec.prediction, rec.references)[rec.metric]


def _heedful(*args: str) -> list[str]:
    return [sys.executable, "-m", "heedful.cli", *args]


def test_killed_run_resumes_to_the_same_results(tmp_path, tiny_llama_dir, make_inputs):
    tasks_file, coll = make_inputs(tmp_path, n=240)
    args = ["eval", "--model.name", str(tiny_llama_dir), "--data.tasks", f"jsonl:{tasks_file}", "--prompts.instructions", str(coll),
            "--scoring.batch_size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_heedful(*args, "--out", str(killed)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = killed / "heedful.sqlite"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done = sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
            except sqlite3.Error:
                done = 0
            if done > 0:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < done < 480
    assert not (killed / "results.json").exists()
    subprocess.run(_heedful(*args, "--out", str(killed)), env=env, check=True, capture_output=True)
    fresh = tmp_path / "fresh"
    subprocess.run(_heedful(*args, "--out", str(fresh)), env=env, check=True, capture_output=True)
    assert (killed / "records.jsonl").read_text() == (fresh / "records.jsonl").read_text()
    a = json.loads((killed / "results.json").read_text())
    b = json.loads((fresh / "results.json").read_text())
    assert a["tasks"] == b["tasks"] and a["kinds"] == b["kinds"]


def test_shared_collections_run_unchanged(tmp_path, tiny_llama_dir, shared_data):
    """Sun et al.'s released collections evaluate as they are, on BIG-bench Lite and MMLU."""
    import shutil

    from heedful.models import load_model

    backend = load_model(str(tiny_llama_dir))
    bbl = evaluate(
        EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks="bigbench:winowhy,hindu_knowledge", limit=1), prompts=PromptConfig(instructions=str(shared_data / "instructions" / "bbl.jsonl")), out=str(tmp_path / "bbl")), backend=backend, show_progress=False,
    )
    kinds = {r.instruction_kind for r in bbl.records}
    assert {"observed", "unobserved", "designer"} <= kinds
    assert not bbl.skipped
    mmlu_dir = tmp_path / "mmlu"
    mmlu_dir.mkdir()
    shutil.copy(shared_data / "mmlu" / "test" / "astronomy_test.csv", mmlu_dir)
    mmlu = evaluate(
        EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks=f"mmlu:{mmlu_dir}", limit=1), prompts=PromptConfig(instructions=f"designer,{shared_data / 'instructions' / 'mmlu.jsonl'}"), out=str(tmp_path / "mmlu-out")), backend=backend, show_progress=False,
    )
    n_mmlu_records = sum(1 for _ in open(shared_data / "instructions" / "mmlu.jsonl"))
    assert len(mmlu.records) == n_mmlu_records + 1  # every record plus the designer prompt
    assert not mmlu.skipped


def test_unknown_perturbation_fails_before_loading_the_model(tmp_path, inputs):
    from heedful.errors import HeedfulError

    tasks_file, coll = inputs
    config = EvalConfig(model=ModelConfig(name="no-such-model"), data=DataConfig(tasks=f"jsonl:{tasks_file}"), prompts=PromptConfig(instructions=str(coll), perturb=["simplifed"]), out=str(tmp_path / "out"))
    with pytest.raises(HeedfulError, match="unknown perturbation 'simplifed'"):
        evaluate(config, show_progress=False)


def test_inapplicable_perturbation_is_skipped_and_recorded(tmp_path, tiny_llama_dir, inputs):
    tasks_file, coll = inputs  # a label space is given for "colors"; "echo" (generation) has none
    spaces = tmp_path / "label_space.json"
    spaces.write_text(json.dumps({"colors.json": {"demo labels": ["red", "blue"], "output descriptions": ""},
                                  "echo.json": {"demo labels": ["Generate free text"], "output descriptions": ""}}))
    config = EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks=f"jsonl:{tasks_file}"), prompts=PromptConfig(instructions="designer", perturb=["simplified"], label_spaces=str(spaces)), scoring=ScoringConfig(max_new_tokens=2), out=str(tmp_path / "out"))
    result = evaluate(config, show_progress=False)
    kinds = {(r.task, r.instruction_kind) for r in result.records}
    assert ("colors", "simplified") in kinds
    assert ("echo", "simplified") not in kinds
    assert result.skipped == {"echo/simplified": 1}
