"""Studies run end to end on a tiny model: locally, on Ray, killed and resumed, with a failing unit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from heedful.store import Store
from heedful.studies.executors import run_study, study_states
from heedful.studies.spec import load_study
from heedful.studies.summary import study_summary, summary_markdown

N = 4


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("study")
    tasks = folder / "colors.jsonl"
    tasks.write_text("".join(
        json.dumps({"task": "colors", "input": f"What colour is thing {i}?", "options": ["red", "blue", "green"],
                    "gold": i % 3}) + "\n" for i in range(N)), encoding="utf-8")
    collection = folder / "phrasings.jsonl"
    collection.write_text("".join(
        json.dumps({"id": f"{kind}-{i}", "task": "colors", "kind": kind, "collection": "tiny", "template": t}) + "\n"
        for kind, templates in {"observed": ["Q: {input}\nA:", "{input}\nAnswer:"],
                                "unobserved": ["Tell me: {input}\n", "{input} The colour is"]}.items()
        for i, t in enumerate(templates)), encoding="utf-8")
    evaluation = {"model": {"name": str(tiny_llama_dir)}, "data": {"tasks": f"jsonl:{tasks}"},
                  "prompts": {"instructions": str(collection), "kinds": ["${kind}"]}}
    study = {
        "study": "tiny",
        "units": {
            "eval": {"command": "eval", "grid": {"kind": ["observed", "unobserved"]}, "config": evaluation},
            "summary": {"command": "robustness", "config": {"from_run": "${eval.out}", "n_bootstrap": 20}},
            "broken": {"command": "eval", "config": {**evaluation, "data": {"tasks": f"jsonl:{folder / 'missing.jsonl'}"},
                                                      "prompts": {"instructions": "designer"}}},
            "after-broken": {"command": "robustness", "config": {"from_run": "${broken.out}"}},
        },
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _records(out: Path) -> list[dict]:
    """The study's records, in a fixed order; log-likelihoods to float32's 7 digits.

    A unit run in a subprocess uses torch's default threads, one under pytest uses one
    thread: the summation order, and so the last bits of a float32 sum, may differ.
    """
    with Store(out / "heedful.sqlite") as store:
        rows = [record for run_id in store.run_ids("eval") for record in store.records(run_id)]
    for row in rows:
        row["logliks"] = [float(f"{v:.6g}") for v in row["logliks"]] if row.get("logliks") else row.get("logliks")
    return sorted(rows, key=lambda r: (r["task"], r["instruction_id"], r["instance_id"]))


def _check_outcome(states: dict, out: Path) -> None:
    assert {u: s.status for u, s in states.items()} == {
        "eval[kind=observed]": "done", "eval[kind=unobserved]": "done", "summary[kind=observed]": "done",
        "summary[kind=unobserved]": "done", "broken": "failed", "after-broken": "blocked",
    }
    assert "missing.jsonl" in states["broken"].error and "\n" not in states["broken"].error
    assert states["after-broken"].error == "needs broken"
    assert len(_records(out)) == 2 * 2 * N  # two phrasings per kind, N instances, in the study's one store


def test_local_study_runs_in_order_isolates_a_failure_and_never_reruns_a_finished_unit(study_file, tmp_path):
    study = load_study(study_file, out=tmp_path / "local")
    states = run_study(study, show_progress=False)
    _check_outcome(states, tmp_path / "local")
    summary = json.loads((study.unit("summary[kind=unobserved]").folder / "robustness.json").read_text())
    assert {row["kind"] for row in summary["rows"]} == {"unobserved"}
    markers = {u.id: (u.folder / "study-unit.json").stat().st_mtime_ns for u in study.units if states[u.id].status == "done"}
    again = run_study(load_study(study_file, out=tmp_path / "local"), show_progress=False)
    assert {u: s.status for u, s in again.items()} == {u: s.status for u, s in states.items()}
    assert {u.id: (u.folder / "study-unit.json").stat().st_mtime_ns for u in study.units if u.id in markers} == markers
    # the summary: each evaluating unit's score per kind, recomputed from the records
    rows = study_summary(study, n_bootstrap=50)
    assert {(r["unit"], r["kind"]) for r in rows} == {("eval[kind=observed]", "observed"),
                                                      ("eval[kind=unobserved]", "unobserved")}
    assert all(r["ci_low"] <= r["mean"] <= r["ci_high"] and r["n_examples"] == N for r in rows)
    assert "| eval[kind=observed] | overall | observed | accuracy | 1 | 4 |" in summary_markdown(study, rows)


def test_ray_executor_gives_the_local_records(study_file, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray not installed: pip install 'heedful[ray]'")
    local = tmp_path / "local"
    run_study(load_study(study_file, out=local), show_progress=False)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        states = run_study(load_study(study_file, out=tmp_path / "ray"), executor="ray", show_progress=False)
        _check_outcome(states, tmp_path / "ray")
        assert _records(tmp_path / "ray") == _records(local)
        resumed = run_study(load_study(study_file, out=tmp_path / "ray"), executor="ray", show_progress=False)
        assert study_states(load_study(study_file, out=tmp_path / "ray")) == resumed
    finally:
        ray.shutdown()


def test_killing_the_driver_and_rerunning_finishes_with_the_same_records(study_file, tmp_path):
    whole = tmp_path / "whole"
    run_study(load_study(study_file, out=whole), show_progress=False)
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "heedful.cli", "study", "run", str(study_file), "--out", str(killed)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(killed.glob("units/*/heedful.sqlite")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 1, rerun.stderr  # the broken unit still fails, and says so
    assert "Traceback" not in rerun.stderr
    assert _records(killed) == _records(whole)
    status = subprocess.run([sys.executable, "-m", "heedful.cli", "study", "status", str(study_file), "--out", str(killed)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert status.returncode == 0 and "failed" in status.stdout and "missing.jsonl" in status.stdout
    markdown = tmp_path / "summary.md"
    summary = subprocess.run([sys.executable, "-m", "heedful.cli", "study", "summary", str(study_file), "--out",
                              str(killed), "--markdown", str(markdown), "--n-bootstrap", "20"],
                             capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "250"})
    assert summary.returncode == 0, summary.stderr
    assert "eval[kind=observed]" in summary.stdout and "| eval[kind=unobserved] | overall | unobserved |" in markdown.read_text()


def test_dry_run_lists_every_unit_and_its_needs_and_runs_nothing(study_file, tmp_path):
    out = tmp_path / "dry"
    proc = subprocess.run(
        [sys.executable, "-m", "heedful.cli", "study", "run", str(study_file), "--out", str(out), "--dry-run"],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    for unit in load_study(study_file, out=out).units:
        assert unit.id in proc.stdout
    assert "pending" in proc.stdout and not (out / "units").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "heedful.cli", "study", "run", str(study_file), "--set", "oops"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --set oops: expected NAME=VALUE"
