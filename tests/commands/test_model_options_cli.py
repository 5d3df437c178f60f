"""``--model.dtype auto`` and ``--model.threads`` through the real console entry point."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from heedful.store import Store


def heedful(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "heedful.cli", *args], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _outputs(out: Path) -> int:
    with sqlite3.connect(out / "heedful.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]


def test_auto_dtype_runs_records_the_machine_and_shares_outputs_with_its_resolved_dtype(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    tasks = tmp_path / "colors.jsonl"
    rows = [{"task": "colors", "input": f"Thing {i}?", "options": ["red", "blue"], "gold": i % 2} for i in range(3)]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "eval"
    common = ("eval", "--model.name", str(tiny_llama_dir), "--data.tasks", f"jsonl:{tasks}", "--out", str(out))

    first = heedful(*common, "--model.dtype", "auto", "--model.threads", "1")
    assert first.returncode == 0, first.stderr
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["dtype"] == "auto"  # as given
    run_id = json.loads((out / "results.json").read_text())["run_id"]
    with Store(out / "heedful.sqlite") as store:
        env = store.run(run_id)["environment"]
    assert env["torch_threads"] == 1
    assert env["native_bf16"] == (env["cpu_capability"] in ("AMX", "AVX512_BF16"))
    computed = _outputs(out)
    assert computed > 0

    # The dtype auto resolved to on this machine, named: a new run id, but every output comes from the cache.
    resolved = "bfloat16" if env["native_bf16"] else "float32"
    second = heedful(*common, "--model.dtype", resolved)
    assert second.returncode == 0, second.stderr
    assert json.loads((out / "results.json").read_text())["run_id"] != run_id
    assert _outputs(out) == computed

    bad = heedful(*common, "--model.threads", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: model.threads must be at least 1, not 0"
