"""First-decoded-token vectors of the evaluation prompts, and the ``heedful representations`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.representations import first_token_representations
from heedful.evaluate.runner import build_work
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig


def test_vectors_belong_to_the_evaluation_prompts(tmp_path, tiny_llama_dir, inputs):
    from heedful.models import load_model
    from heedful.prompts.sources import InstructionSources
    from heedful.tasks.spec import load_tasks

    tasks_file, coll = inputs
    config = EvalConfig(
        model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks=f"jsonl:{tasks_file}", limit=3),
        prompts=PromptConfig(instructions=str(coll)), scoring=ScoringConfig(batch_size=2),
    )
    backend = load_model(str(tiny_llama_dir))
    vectors, labels, skipped = first_token_representations(config, backend, layer=-2, show_progress=False)
    assert vectors.shape == (2 * 3, backend.model.config.hidden_size)
    assert skipped == {"echo/*": 3}  # the collection has no instruction for the echo task
    assert [(lbl.instruction_id, lbl.kind) for lbl in labels[:3]] == [("T/1", "observed")] * 3
    tasks, sources = load_tasks(config.data.tasks), InstructionSources.parse(config.prompts.instructions)
    items, _ = build_work(tasks, sources, config, chat_wrap=None)
    direct = backend.first_token_hidden_states([items[4].example.prompt], layer=-2)
    np.testing.assert_allclose(vectors[4], direct[0], rtol=1e-5, atol=1e-5)


def test_representations_command_writes_distances_and_vectors(tmp_path, tiny_llama_dir, inputs):
    tasks_file, coll = inputs
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "heedful.cli", "representations", "--model.name", str(tiny_llama_dir),
         "--data.tasks", f"jsonl:{tasks_file}", "--prompts.instructions", str(coll), "--data.limit", "4",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((out / "representations.json").read_text())
    [row] = saved["instructions"]
    assert row["instruction_id"] == "T/2" and row["kind"] == "unobserved" and row["n"] == 4 and row["distance"] > 0
    assert saved["overall"]["unobserved"]["n_tasks"] == 1 and saved["config"]["layer"] == -2
    assert "packages" in saved["environment"]
    arrays = np.load(out / "vectors.npz")
    assert arrays["vectors"].shape[0] == 8 and list(arrays["kind"]).count("observed") == 4
    assert "colors" in proc.stdout and "unobserved" in proc.stdout
