"""Training runs as research designs: STL / MTL at sample budgets, chained pre-finetuning.

Gupta 2023 ("Instruction Tuned Models are Quick Learners") fine-tunes an instruction-tuned
model on downstream SuperNI tasks with N training instances per task, either one model
per task (single-task learning, STL) or one model on the mixture (multi-task learning,
MTL), with and without instructions in the prompt (encoding ``def+pos2`` vs ``none``), and
chains a pre-finetuning run into a downstream one (``init_from``). Kung & Peng 2023 train
on altered instructions (``perturb``: simplified definitions, delusive demonstrations).
Sun et al. 2023 align paraphrased instructions with a reference one (``instructions``:
every instance under every instruction, the first a task has being the reference, and
``loop.kl_weight`` λ > 0 for the KL term; FT, FT+KL, PT, PT+KL are ``method`` full or
prefix with λ = 0 or > 0).

A run folder holds ``train_config.json`` (config, versions, seeds), ``heedful.sqlite``
(the training run and every evaluation's records), and per unit (the MTL model, or one
folder per STL task) ``checkpoints/``, ``final/`` (the model or adapter and tokenizer,
safetensors) and the evaluation files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.hardware import resolve_dtype
from heedful.io import write_json_atomic
from heedful.models import load_model
from heedful.models.backend import is_prompt_learning
from heedful.models.encoding import needs_bos
from heedful.models.loading import FINAL, backend_for, trained_model
from heedful.progress import transformers_bars_off
from heedful.prompts.config import PromptConfig
from heedful.provenance import environment
from heedful.rundir import RunDir
from heedful.store import Store, content_hash
from heedful.tasks.config import DataConfig
from heedful.tasks.spec import load_tasks
from heedful.tasks.types import Task
from heedful.train.checkpoint import checkpoint_name
from heedful.train.config import TrainConfig
from heedful.train.data import flatten_groups, tokenize_all
from heedful.train.methods import apply_method, enable_gradient_checkpointing, is_peft
from heedful.train.tracking import Tracking, eval_metrics, make_trackers, tracked
from heedful.train.trainer import make_accelerator, train_loop
from heedful.train.units import TrainUnit, UnitResult, plan_units, unit_examples, unit_instruction_groups


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _init_source(config: TrainConfig, unit: TrainUnit) -> tuple[str, str | None]:
    """(model to load, adapter to apply) for a unit, following ``init_from`` if set."""
    if not config.init_from:
        return config.model.name, None
    return trained_model(config.init_from, unit.name)


def load_for_training(config: TrainConfig, unit: TrainUnit) -> tuple[Any, Any, bool]:
    """(model ready to train, tokenizer, is_seq2seq) for one unit."""
    source, adapter = _init_source(config, unit)
    # Loaded on the CPU; accelerate moves it to model.device, whose bf16 support decides dtype auto.
    dtype = resolve_dtype(config.model.dtype, config.model.device)
    backend = load_model(source, dtype=dtype, device="cpu", threads=config.model.threads)
    model, tokenizer, seq2seq = backend.model, backend.tokenizer, backend.is_seq2seq
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    _seed_everything(config.seed)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        if config.method.name == "full" or not _same_peft_method(model, config.method.name):
            if not hasattr(model, "merge_and_unload") or is_prompt_learning(model):
                raise HeedfulError(
                    f"{config.init_from}: a {model.peft_config['default'].peft_type} adapter cannot be merged; "
                    f"continue with the same method.name"
                )
            model = model.merge_and_unload()
    if not is_peft(model):
        model = apply_method(model, config.method, is_seq2seq=seq2seq)
    if config.loop.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model.train()
    return model, tokenizer, seq2seq


def _same_peft_method(model: Any, method: str) -> bool:
    kind = str(model.peft_config["default"].peft_type).lower()
    return {"lora": "lora", "prefix": "prefix_tuning", "prompt": "prompt_tuning"}[method] in kind if method != "full" else False


def save_final(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save the model (or adapter) and tokenizer as safetensors, atomically (temp folder + rename)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for attr in ("hf_quantizer",):  # a GGUF-loaded model refuses to save until these go
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if getattr(getattr(model, "config", None), "quantization_config", None) is not None:
        model.config.quantization_config = None
        model.is_quantized = False

    with transformers_bars_off():
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def _eval_task_spec(config: TrainConfig, unit: TrainUnit) -> str:
    """The task spec the evaluation loads: the unit's own task file for SuperNI STL."""
    if unit.name and len(unit.tasks) == 1 and unit.tasks[0].source == "superni":
        file = unit.tasks[0].metadata.get("file")
        if file:
            return f"superni:{file}"
    return config.data.tasks


def evaluate_unit(
    config: TrainConfig,
    unit: TrainUnit,
    model: Any,
    tokenizer: Any,
    eval_dir: Path,
    show_progress: bool,
    *,
    weights: Path,
) -> Any:
    """Evaluate the model in memory with the evaluation engine; files go to ``eval_dir``.

    ``weights`` names the saved model or adapter these weights are (the evaluation's
    identity in the store: final/ at the end, the checkpoint folder mid-run).
    """
    was_training = model.training
    model.eval()
    peft = is_peft(model)
    eval_config = EvalConfig(
        model=dataclasses.replace(
            config.model, name=config.model.name if peft else str(weights), adapter=str(weights) if peft else None
        ),
        data=DataConfig(tasks=_eval_task_spec(config, unit), split=config.eval.split, limit=config.eval.limit),
        prompts=PromptConfig(instructions=config.eval.instructions or config.prompts.instructions),
        scoring=ScoringConfig(max_new_tokens=config.eval.max_new_tokens, batch_size=config.eval.batch_size),
        seed=config.seed,
        out=str(eval_dir),
    )
    backend = backend_for(model, tokenizer, name=eval_config.model.name)
    try:
        return evaluate(eval_config, backend=backend, show_progress=show_progress)
    finally:
        model.train(was_training)


def run_id_for(config: TrainConfig) -> str:
    return "train-" + content_hash(config.identity())[:16]


def run_training(
    config: TrainConfig,
    *,
    tasks: Sequence[Task] | None = None,
    accelerator: Any = None,
    show_progress: bool = True,
    on_step: Callable[[Any], None] | None = None,
) -> list[UnitResult]:
    """Train every unit of ``config`` (STL: one per task, MTL: one) and evaluate each.

    Files go to ``config.out``. ``tasks`` overrides loading ``config.data.tasks`` (for
    callers that already hold tasks). With ``config.resume`` re-running the same config
    continues: finished units are skipped, an interrupted one continues from its last
    checkpoint. With ``config.loop.log_with`` the run is also one run of each experiment
    tracker (:mod:`heedful.train.tracking`), unless ``accelerator`` is given: it brings its own.
    """
    config.validate()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    resume = config.resume
    if tasks is None:
        tasks = load_tasks(config.data.tasks, seed=config.seed, shuffle_options=False)
    units = plan_units(tasks, config.data.setting)
    run_id = run_id_for(config)
    provenance = {
        "run_id": run_id,
        "config": dataclasses.asdict(config),
        "environment": environment(),
        "seeds": {"seed": config.seed, "data_order": config.seed, "budget_sample": config.seed},
        "units": [{"name": u.name or "mtl", "tasks": [t.name for t in u.tasks]} for u in units],
    }
    log_dir = Path(config.loop.log_dir) if config.loop.log_dir else RunDir(out).logs
    if accelerator is None:
        trackers = make_trackers(config.loop.log_with, run_id, log_dir) if config.loop.log_with else None
        accelerator = make_accelerator(config.loop.mixed_precision, cpu=config.model.device == "cpu", log_with=trackers)
    if accelerator.is_main_process:
        write_json_atomic(RunDir(out).train_config, provenance)
        with Store(RunDir(out).store) as store:
            store.start_run(run_id, "train", {"config": provenance["config"], "units": provenance["units"]}, provenance["environment"])

    results: list[UnitResult] = []
    with tracked(accelerator, config.loop.log_with, log_dir, provenance["config"]) as tracking:
        for unit in units:
            unit_dir = out / unit.name if unit.name else out
            done_file = RunDir(unit_dir).unit
            if resume and done_file.is_file():
                results.append(UnitResult(**_load_unit(done_file)))
                continue
            tracking.start()
            results.append(
                _train_unit(config, unit, unit_dir, out, accelerator, resume, show_progress, on_step, tracking)
            )
    if accelerator.is_main_process:
        with Store(RunDir(out).store) as store:
            store.finish_run(run_id)
    return results


def _train_unit(
    config: TrainConfig, unit: TrainUnit, unit_dir: Path, out: Path, accelerator: Any, resume: bool,
    show_progress: bool, on_step: Callable[[Any], None] | None, tracking: Tracking,
) -> UnitResult:
    """Load, train, save and evaluate one unit; its ``unit.json`` marks it done.

    Its tracker metrics are named ``UNIT/train/...`` and ``UNIT/eval/...`` when it is one
    model of several (STL), else ``train/...`` and ``eval/...``.
    """
    model, tokenizer, seq2seq = load_for_training(config, unit)
    groups: list[list[int]] | None = None
    if config.prompts.encoding() is None:
        examples, groups = flatten_groups(unit_instruction_groups(unit, config))
    else:
        examples = unit_examples(unit, config, tokenizer)
    features = tokenize_all(
        examples, tokenizer, is_seq2seq=seq2seq, max_source_length=config.data.max_source_length,
        max_target_length=config.data.max_target_length, add_bos=not seq2seq and needs_bos(model.config),
    )
    prefix = f"{unit.name}/" if unit.name else ""
    step_hook = on_step
    if config.eval.enabled and config.eval.every:
        step_hook = _periodic_eval(
            config, unit, model, tokenizer, seq2seq, unit_dir, out, accelerator, on_step,
            log=lambda summary, step: tracking.log(eval_metrics(summary, prefix), step),
        )
    loop = train_loop(
        model, tokenizer, features, config.loop, unit_dir / "checkpoints", is_seq2seq=seq2seq,
        accelerator=accelerator, resume=resume, on_step=step_hook, show_progress=show_progress, groups=groups,
        seed=config.seed, log_prefix=prefix,
    )
    trained = accelerator.unwrap_model(model)
    result = UnitResult(
        name=unit.name or "mtl",
        directory=unit_dir,
        model_dir=unit_dir / FINAL,
        examples=len(features),
        steps=loop.state.step,
        final_loss=loop.state.losses[-1] if loop.state.losses else None,
    )
    if accelerator.is_main_process:
        save_final(trained, tokenizer, unit_dir / FINAL)
        if config.eval.enabled:
            evaluation = evaluate_unit(
                config, unit, trained, tokenizer, unit_dir, show_progress, weights=unit_dir / FINAL
            )
            result.eval_run_id, result.eval_summary = evaluation.run_id, evaluation.summary
            tracking.log(eval_metrics(evaluation.summary, prefix), loop.state.step)
            if unit_dir != out:  # STL: gather every task's records in the run's store
                _mirror_eval(RunDir(out).store, RunDir(unit_dir).store, evaluation)
        write_json_atomic(RunDir(unit_dir).unit, _dump_unit(result))
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return result


def _periodic_eval(
    config: TrainConfig,
    unit: TrainUnit,
    model: Any,
    tokenizer: Any,
    seq2seq: bool,
    unit_dir: Path,
    out: Path,
    accelerator: Any,
    then: Callable[[Any], None] | None,
    *,
    log: Callable[[dict[str, Any], int], None],
) -> Callable[[Any], None]:
    """An on-step hook evaluating every ``eval.every`` steps into ``unit_dir/eval-step-N``; ``log`` gets its scores."""
    def hook(state: Any) -> None:
        if state.step % config.eval.every == 0 and accelerator.is_main_process:
            name = checkpoint_name(state.step)
            evaluation = evaluate_unit(
                config, unit, model, tokenizer, unit_dir / f"eval-{name}", False,
                weights=unit_dir / "checkpoints" / name,
            )
            _mirror_eval(RunDir(out).store, RunDir(unit_dir / f"eval-{name}").store, evaluation)
            log(evaluation.summary, state.step)
        if then is not None:
            then(state)

    return hook


def _mirror_eval(run_store: Path, unit_store: Path, evaluation: Any) -> None:
    with Store(unit_store) as source:
        info = source.run(evaluation.run_id)
    with Store(run_store) as store:
        if info is not None:
            store.start_run(evaluation.run_id, "eval", info["config"], info["environment"])
        store.put_records(evaluation.run_id, [record.to_dict() for record in evaluation.records])
        store.finish_run(evaluation.run_id)


def _dump_unit(result: UnitResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["directory"], data["model_dir"] = str(result.directory), str(result.model_dir)
    return data


def _load_unit(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    data["directory"], data["model_dir"] = Path(data["directory"]), Path(data["model_dir"])
    return data
