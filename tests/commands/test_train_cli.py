"""``heedful train`` through the CLI: options reach the run config, bad ones are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared_data import SHARED_DATA

SUPERNI = SHARED_DATA / "superni" / "tasks"
TASK = SUPERNI / "task1344_glue_entailment_classification.json"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "heedful.cli", "train", *args], capture_output=True, text=True, timeout=600
    )


def test_alignment_options_reach_the_run_config(tiny_llama_dir, tmp_path):
    if not TASK.is_file():
        pytest.skip(f"SuperNI task not found at {TASK}")
    out = tmp_path / "run"
    proc = run(
        "--model", str(tiny_llama_dir), "--tasks", f"superni:{TASK}", "--budget", "2", "--method", "prefix",
        "--instructions", "superni:none,superni:def", "--kl-weight", "0.25", "--train-split", "val",
        "--max-steps", "1", "--batch-size", "2", "--learning-rate", "1e-3", "--max-source-length", "64",
        "--eval-limit", "1", "--eval-max-new-tokens", "2", "--out", str(out),
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "train_config.json").read_text())["config"]
    assert config["instructions"] == "superni:none,superni:def" and config["train_split"] == "val"
    assert config["loop"] == {**config["loop"], "kl_weight": 0.25, "max_steps": 1, "batch_size": 2, "learning_rate": 1e-3}
    assert "heedful train" in proc.stdout and (out / "final" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kl-weight", "0.5"], "error: --kl-weight aligns instructions"),
        (["--train-split", "dev"], "error: unknown train split 'dev'"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, tmp_path):
    proc = run("--tasks", "superni:x", *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
