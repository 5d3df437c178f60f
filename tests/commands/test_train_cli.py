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


def test_alignment_options_reach_the_run_config_and_its_config_file_reruns_it(tiny_llama_dir, tmp_path):
    if not TASK.is_file():
        pytest.skip(f"SuperNI task not found at {TASK}")
    out = tmp_path / "run"
    proc = run(
        "--model.name", str(tiny_llama_dir), "--data.tasks", f"superni:{TASK}", "--data.budget", "2",
        "--method.name", "prefix", "--prompts.instructions", "superni:none,superni:def", "--loop.kl_weight", "0.25",
        "--data.split", "val", "--loop.max_steps", "1", "--loop.batch_size", "2", "--loop.learning_rate", "1e-3",
        "--data.max_source_length", "64", "--eval.limit", "1", "--eval.max_new_tokens", "2", "--out", str(out),
    )
    assert proc.returncode == 0, proc.stderr
    provenance = json.loads((out / "train_config.json").read_text())
    config = provenance["config"]
    assert config["prompts"]["instructions"] == "superni:none,superni:def" and config["data"]["split"] == "val"
    assert config["loop"] == {**config["loop"], "kl_weight": 0.25, "max_steps": 1, "batch_size": 2, "learning_rate": 1e-3}
    assert "heedful train" in proc.stdout and (out / "final" / "adapter_model.safetensors").is_file()
    # The stored config.yaml is the whole config: re-running from it is the same run (same id), found done.
    again = run("--config", str(out / "config.yaml"))
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "train_config.json").read_text())["run_id"] == provenance["run_id"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loop.kl_weight", "0.5"], "error: loop.kl_weight aligns instructions"),
        (["--data.split", "dev"], "error: --data.split: expected one of train, val, test, got 'dev'"),
        (["--method.name", "adapters"], "error: --method.name: expected one of full, lora, prefix, prompt"),
        ([], "error: the following arguments are required: data.tasks"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, tmp_path):
    tasks = ["--data.tasks", "superni:x"] if args else []
    proc = run(*tasks, *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "run").exists()
