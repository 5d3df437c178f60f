from __future__ import annotations

import dataclasses
import json

import pytest

from heedful.errors import HeedfulError
from heedful.models.config import ModelConfig
from heedful.models.loading import load_configured, trained_model
from heedful.store import Store
from heedful.tasks.sampling import select_instances
from heedful.train.config import LoopConfig, TrainConfig, TrainDataConfig, TrainEvalConfig, TrainPromptConfig
from heedful.train.methods import MethodConfig
from heedful.train.recipes import run_training
from heedful.train.units import plan_units, unit_examples


def _config(tasks, tiny_llama_dir, out, *, data=None, prompts=None, eval=None, **kw):
    spec = "+".join(f"superni:{t.metadata['file']}" for t in tasks)
    return TrainConfig(
        data=TrainDataConfig(**{"tasks": spec, "budget": "4", "max_source_length": 48, "max_target_length": 6, **(data or {})}),
        model=ModelConfig(name=str(tiny_llama_dir)),
        prompts=TrainPromptConfig(**{"instructions": "superni:none", **(prompts or {})}),
        loop=kw.pop("loop", LoopConfig(epochs=1, batch_size=2, learning_rate=1e-3)),
        eval=TrainEvalConfig(**{"limit": 2, "max_new_tokens": 3, **(eval or {})}),
        out=str(out),
        **kw,
    )


@pytest.mark.parametrize("budget, seed, sample", [("4", 0, "first"), ("4", 7, "random"), ("0.01", 0, "first"), ("all", 0, "first")])
def test_budget_selects_the_split_instances(tasks, causal_tokenizer, budget, seed, sample):
    config = TrainConfig(TrainDataConfig(tasks="x", budget=budget, sample=sample), seed=seed,
                         prompts=TrainPromptConfig("superni:none"))
    unit = plan_units(tasks, "mtl")[0]
    examples = unit_examples(unit, config, causal_tokenizer)
    drawn = seed if sample == "random" else None  # the first N by default, as Gupta 2023
    expected = [i.id for t in tasks for i in select_instances(t, "train", budget, seed=drawn)]
    assert [e.instance_id for e in examples] == expected
    assert all(i.split == "train" for t in tasks for i in select_instances(t, "train", budget, seed=drawn))
    if sample == "first" and budget == "4":
        assert expected == [i.id for t in tasks for i in t.split("train")[:4]]


def test_a_task_without_a_training_split_trains_on_all_its_instances(tasks, causal_tokenizer):
    """Gupta 2023's rule for SuperNI tasks too small for a training split: reuse every instance."""
    small = dataclasses.replace(tasks[0], instances=[i for i in tasks[0].instances if i.split != "train"])
    config = TrainConfig(TrainDataConfig(tasks="x", budget="3"), prompts=TrainPromptConfig("superni:none"))
    examples = unit_examples(plan_units([small], "mtl")[0], config, causal_tokenizer)
    assert [e.instance_id for e in examples] == [i.id for i in small.instances[:3]]


def test_stl_trains_one_model_per_task_and_evaluates(tasks, tiny_llama_dir, tmp_path):
    config = _config(tasks, tiny_llama_dir, tmp_path, data={"setting": "stl"})
    results = run_training(config, show_progress=False)
    assert [r.name for r in results] == [t.name for t in tasks]
    for task, result in zip(tasks, results):
        assert (tmp_path / task.name / "final" / "model.safetensors").is_file()
        assert result.examples == 4 and result.steps == 2
        assert set(result.eval_summary["tasks"]) == {task.name}
        saved = json.loads((tmp_path / task.name / "results.json").read_text())
        assert saved["config"]["model"]["name"] == str(tmp_path / task.name / "final")
    provenance = json.loads((tmp_path / "train_config.json").read_text())
    assert provenance["config"]["data"]["setting"] == "stl" and "packages" in provenance["environment"]
    with Store(tmp_path / "heedful.sqlite") as store:
        assert store.run(provenance["run_id"])["kind"] == "train"
        for r in results:
            assert store.count_records(r.eval_run_id) == 2
    # a second call finds every unit done and trains nothing
    again = run_training(config, show_progress=False)
    assert [r.eval_run_id for r in again] == [r.eval_run_id for r in results]


def test_mtl_lora_chained_from_a_pre_finetuning_run(tasks, tiny_llama_dir, tmp_path):
    pre = run_training(_config(tasks[:1], tiny_llama_dir, tmp_path / "pre", eval={"enabled": False}), show_progress=False)
    assert len(pre) == 1 and (tmp_path / "pre" / "final" / "config.json").is_file()
    down = _config(
        tasks, tiny_llama_dir, tmp_path / "down", method=MethodConfig(name="lora"), init_from=str(tmp_path / "pre"),
        eval={"enabled": False},
    )
    results = run_training(down, show_progress=False)
    assert results[0].examples == 8
    assert (tmp_path / "down" / "final" / "adapter_config.json").is_file()
    adapter = json.loads((tmp_path / "down" / "final" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tmp_path / "pre" / "final")
    # a finished run folder is a model name: the model it trained, with its adapter
    assert trained_model(tmp_path / "down") == (str(tmp_path / "pre" / "final"), str(tmp_path / "down" / "final"))
    assert trained_model(tmp_path / "pre") == (str(tmp_path / "pre" / "final"), None)
    backend = load_configured(ModelConfig(name=str(tmp_path / "down")))
    assert backend.name == f"{tmp_path / 'pre' / 'final'}+{tmp_path / 'down' / 'final'}"


def test_bad_settings_are_one_line_errors(tasks, tiny_llama_dir, tmp_path):
    with pytest.raises(HeedfulError, match="unknown method.name 'adapters'"):
        run_training(_config(tasks, tiny_llama_dir, tmp_path, method=MethodConfig(name="adapters")))
    with pytest.raises(HeedfulError, match="not a heedful training run"):
        run_training(_config(tasks, tiny_llama_dir, tmp_path / "x", init_from=str(tmp_path)), show_progress=False)


@pytest.mark.parametrize("perturb", ["simplified", "delusive"])
def test_perturbation_alters_training_prompts(tasks, causal_tokenizer, perturb):
    from pathlib import Path

    label_file = Path(tasks[0].metadata["file"]).parents[1] / "label_space.json"
    if not label_file.is_file():
        pytest.skip(f"label space file not found at {label_file}")
    unit = plan_units(tasks[:1], "mtl")[0]
    data = TrainDataConfig(tasks="x", budget="2")
    plain = unit_examples(unit, TrainConfig(data), causal_tokenizer)
    altered = unit_examples(
        unit,
        TrainConfig(data, prompts=TrainPromptConfig(alteration=perturb, label_spaces=str(label_file))),
        causal_tokenizer,
    )
    assert [e.target for e in altered] == [e.target for e in plain]
    assert all(a.source != p.source for a, p in zip(altered, plain))
    if perturb == "simplified":
        assert all(tasks[0].definition.strip()[:40] not in a.source for a in altered)


def test_eval_every_n_steps_goes_into_the_run_store(tasks, tiny_llama_dir, tmp_path):
    config = _config(tasks[:1], tiny_llama_dir, tmp_path, eval={"every": 1, "limit": 1})
    [result] = run_training(config, show_progress=False)
    assert result.steps == 2
    for step in (1, 2):
        saved = json.loads((tmp_path / f"eval-step-{step:08d}" / "results.json").read_text())
        assert saved["config"]["model"]["name"] == str(tmp_path / "checkpoints" / f"step-{step:08d}")
    with Store(tmp_path / "heedful.sqlite") as store:
        kinds = [store.run(r)["kind"] for (r,) in store._db.execute("SELECT run_id FROM runs")]
    assert sorted(kinds) == ["eval", "eval", "eval", "train"]


def test_alignment_run_trains_a_prefix_on_every_instruction(tasks, tiny_llama_dir, tmp_path):
    """Sun et al. 2023's PT+KL: each instance under each instruction, evaluated under each."""
    config = _config(
        tasks[:1], tiny_llama_dir, tmp_path, prompts={"instructions": "superni:none,superni:def"},
        method=MethodConfig(name="prefix"), loop=LoopConfig(epochs=1, batch_size=2, learning_rate=1e-3, kl_weight=0.5),
    )
    [result] = run_training(config, show_progress=False)
    assert result.examples == 2 * 4 and result.steps == 2  # 4 instances x 2 prompts, 2 instances per batch
    assert (tmp_path / "final" / "adapter_model.safetensors").is_file()
    [per_instruction] = result.eval_summary["tasks"].values()
    assert len(per_instruction) == 2 and all(e["n"] == 2 for e in per_instruction.values())
    saved = json.loads((tmp_path / "train_config.json").read_text())["config"]
    assert saved["prompts"]["instructions"] == "superni:none,superni:def" and saved["loop"]["kl_weight"] == 0.5


def test_instruction_options_are_checked(tasks, tiny_llama_dir, tmp_path):
    both = {"instructions": "superni:none,superni:def", "alteration": "simplified"}
    with pytest.raises(HeedfulError, match="alters one superni: encoding"):
        run_training(_config(tasks, tiny_llama_dir, tmp_path, prompts=both))
    with pytest.raises(HeedfulError, match="give two or more per task in prompts.instructions"):
        run_training(_config(tasks, tiny_llama_dir, tmp_path, loop=LoopConfig(kl_weight=0.3)))
    with pytest.raises(HeedfulError, match="unknown data.split 'dev'"):
        run_training(_config(tasks, tiny_llama_dir, tmp_path, data={"split": "dev"}))


def test_kl_groups_keep_only_the_prompts_that_share_the_reference_target():
    """A letter-answer instruction cannot be KL-aligned with a text-answer reference: it trains alone."""
    from heedful.train.data import TrainExample
    from heedful.train.units import aligned_groups

    reference, paraphrase, letters = (TrainExample("t", "0", f"{name}: q", target, name)
                                      for name, target in (("ref", " Paris"), ("para", " Paris"), ("abc", " B")))
    assert aligned_groups([reference, paraphrase, letters]) == [[reference, paraphrase], [letters]]
    assert aligned_groups([reference, paraphrase]) == [[reference, paraphrase]]
    joined = TrainExample("t", "0", "q ", "Paris", "trailing-space")  # the same answer, joined without a space
    assert aligned_groups([reference, joined, letters]) == [[reference, joined], [letters]]
