"""Evaluate a model on every (task x instruction x instance) and store the results.

The runner is the one place that joins tasks, instructions, prompt rendering, the model
backend and the store. Model work is keyed by a content hash of what the model is asked,
so an interrupted run resumes without recomputing, and identical questions asked by
different runs are answered once.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.evaluate.baselines import baseline_report
from heedful.evaluate.config import EvalConfig
from heedful.evaluate.metrics import score_generation
from heedful.evaluate.records import Record
from heedful.io import write_json_atomic, write_jsonl_atomic
from heedful.models import ChoiceRequest
from heedful.models.loading import load_configured
from heedful.models.types import Backend
from heedful.perturbations.label_space import load_label_space_file
from heedful.perturbations.variants import parse_perturbation, perturbed_variants
from heedful.progress import progress_bar
from heedful.prompts.demos import continuation_strings, demonstrations_for, render_example
from heedful.prompts.instruction import Instruction
from heedful.prompts.sources import InstructionSources, task_type_code
from heedful.prompts.types import RenderedExample
from heedful.provenance import environment
from heedful.rundir import RunDir
from heedful.store import Store, content_hash
from heedful.tasks.sampling import select_instances
from heedful.tasks.spec import load_data
from heedful.tasks.types import Instance, Task

log = logging.getLogger(__name__)

SCORING_METHODS = ("sum", "mean", "sun")
# Bumped when the meaning of a cached generation changes (2: stop strings apply only
# once the answer has begun), so stale outputs are never replayed.
GENERATION_VERSION = 2


@dataclass
class WorkItem:
    """One prompt to evaluate, with where it came from and its model-output key."""

    task: Task
    instruction: Instruction
    instance: Instance
    example: RenderedExample
    continuations: tuple[str, ...] | None
    key: str = ""
    task_type: str | None = None


def build_work(
    tasks: Sequence[Task], sources: InstructionSources, config: EvalConfig, *, chat_wrap: Callable[[str], str] | None
) -> tuple[list[WorkItem], dict[str, int]]:
    """Render every (task, instruction, instance) prompt; returns items and skip counts."""
    items: list[WorkItem] = []
    skipped: dict[str, int] = defaultdict(int)
    prompts = config.prompts
    label_spaces = None
    if config.prompts.label_spaces:
        label_spaces = load_label_space_file(config.prompts.label_spaces)
    # incorrect and closest draw on the observed instructions of every task of the spec
    observed = [record for record in sources.records if record.kind == "observed"]
    for task in tasks:
        instances = select_instances(task, config.data.split, budget=config.data.limit, seed=config.seed)
        if not instances:
            raise HeedfulError(f"task {task.name}: no instances in split '{config.data.split}'")
        instructions = sources.for_task(task)
        if not instructions:
            log.warning("task %s: no instruction of '%s' applies to it; skipped", task.name, prompts.instructions)
            skipped[f"{task.name}/*"] += len(instances)
            continue
        demos_for = demonstrations_for(task, instances, config.prompts.shots, config.seed)
        task_type = task_type_code(task, sources.records)
        pairs: list[tuple[Instruction, Task]] = [(instruction, task) for instruction in instructions]
        if config.prompts.perturb:
            for name in config.prompts.perturb:
                try:
                    pairs.extend(perturbed_variants(
                        task, instructions, [name], seed=config.seed, label_spaces=label_spaces, observed_pool=observed
                    ))
                except HeedfulError as err:
                    if config.prompts.on_unfit != "skip":
                        raise
                    skipped[f"{task.name}/{name}"] += 1
                    log.warning("skipped perturbation %s for task %s: %s", name, task.name, err)
        for instruction, variant in pairs:
            rendered: list[WorkItem] = []
            try:
                for inst in instances:
                    example = render_example(instruction, variant, inst, demos_for.get(inst.id, ()))
                    if chat_wrap is not None:
                        example = dataclasses.replace(example, prompt=chat_wrap(example.prompt))
                    conts = continuation_strings(example.prompt, example.choices) if example.choices else None
                    rendered.append(WorkItem(task, instruction, inst, example, conts, task_type=task_type))
            except HeedfulError as err:
                if config.prompts.on_unfit != "skip":
                    raise
                # A phrasing is compared on the same instances as the others, so a record
                # that does not fit one instance is dropped for the whole task.
                skipped[f"{task.name}/{instruction.id}"] += 1
                log.warning("skipped instruction %s for task %s: %s", instruction.id, task.name, err)
                continue
            items.extend(rendered)
    if not items:
        raise HeedfulError(f"no instruction of '{prompts.instructions}' applies to any task of '{config.data.tasks}'")
    return items, dict(skipped)


def plan_work(tasks: Sequence[Task], config: EvalConfig, backend: Backend) -> tuple[list[WorkItem], dict[str, int]]:
    """:func:`build_work` for ``config``'s instructions, chat-wrapped for ``backend`` if asked."""
    prompts = config.prompts
    sources = InstructionSources.parse(prompts.instructions, kinds=prompts.kinds, collections=prompts.collections)
    # A model behind a chat API has its template applied by the server, not here.
    wrap = config.model.chat and not getattr(backend, "chat_on_server", False)
    return build_work(tasks, sources, config, chat_wrap=chat_wrapper(backend) if wrap else None)


def assign_keys(items: Sequence[WorkItem], config: EvalConfig) -> None:
    ident = config.model.identity()
    for item in items:
        if item.continuations is not None:
            if config.scoring.rank == "sun":
                method = {"method": "sun", "max_new_tokens": config.scoring.max_new_tokens}
            else:
                method = {"method": "loglik"}
            item.key = content_hash(ident, method, item.example.prompt, item.continuations)
        else:
            method = {
                "method": "generate",
                "version": GENERATION_VERSION,
                "max_new_tokens": config.scoring.max_new_tokens,
                "stop": config.scoring.stop,
            }
            item.key = content_hash(ident, method, item.example.prompt)


def compute_outputs(backend: Backend, items: Sequence[WorkItem], config: EvalConfig) -> dict[str, dict[str, Any]]:
    """Run the model on ``items`` (all missing from the cache); returns key -> output payload."""
    out: dict[str, dict[str, Any]] = {}
    choice_items = [it for it in items if it.continuations is not None]
    gen_items = [it for it in items if it.continuations is None]
    if choice_items:
        requests = [ChoiceRequest(it.example.prompt, it.continuations) for it in choice_items]
        if config.scoring.rank == "sun":
            probs = backend.option_probabilities_after_generation(
                requests, max_new_tokens=config.scoring.max_new_tokens, batch_size=config.scoring.batch_size
            )
            for it, p in zip(choice_items, probs):
                out[it.key] = {"option_scores": list(p)}
        else:
            results = backend.loglikelihoods(
                requests, batch_size=config.scoring.batch_size, memory_budget_mb=config.scoring.memory_budget_mb
            )
            for it, res in zip(choice_items, results):
                out[it.key] = {"logliks": list(res.logliks), "n_tokens": list(res.n_tokens)}
    if gen_items:
        texts = backend.generate(
            [it.example.prompt for it in gen_items],
            max_new_tokens=config.scoring.max_new_tokens,
            stop=config.scoring.stop,
            batch_size=config.scoring.batch_size,
        )
        for it, text in zip(gen_items, texts):
            out[it.key] = {"text": text}
    return out


def make_record(item: WorkItem, output: dict[str, Any], config: EvalConfig) -> Record:
    """One per-example record: prompt, scored continuations, prediction and scores (fractions)."""
    ex = item.example
    common: dict[str, Any] = {
        "task": item.task.name,
        "category": item.task.category,
        "instruction_id": item.instruction.id,
        "instruction_kind": item.instruction.kind,
        "instruction_collection": item.instruction.collection,
        "instance_id": item.instance.id,
        "task_type": item.task_type,
        "prompt": ex.prompt,
        "references": tuple(ex.references),
        "output_key": item.key,
    }
    if item.continuations is not None:
        logliks = option_scores = None
        if "option_scores" in output:
            scores = option_scores = output["option_scores"]
        else:
            logliks = output["logliks"]
            if config.scoring.rank == "mean":
                scores = [ll / max(n, 1) for ll, n in zip(logliks, output["n_tokens"])]
            else:
                scores = logliks
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        return Record(
            **common,
            options=tuple(item.continuations),
            logliks=None if logliks is None else tuple(logliks),
            option_scores=None if option_scores is None else tuple(option_scores),
            prediction=ex.choices[best],
            prediction_index=best,
            gold=ex.gold,
            metric="accuracy",
            score=float(best == ex.gold),
        )
    text = output["text"].strip()
    metrics = score_generation(text, ex.references)
    metric = item.task.metric if item.task.metric in metrics else "exact_match"
    return Record(
        **common,
        prediction=text,
        gold=ex.references[0] if ex.references else None,
        metric=metric,
        score=metrics[metric],
        exact_match=metrics["exact_match"],
        rouge_l=metrics["rougeL"],
    )


def run_id_for(config: EvalConfig) -> str:
    return "eval-" + content_hash(config.identity())[:16]


def summarize(records: Sequence[Record]) -> dict[str, Any]:
    """Per (task, instruction) scores and per-kind statistics across phrasings (fractions, 0..1)."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for rec in records:
        groups[(rec.task, rec.instruction_id)].append(rec)
    per_task: dict[str, dict[str, Any]] = defaultdict(dict)
    for (task, instruction_id), recs in sorted(groups.items()):
        per_task[task][instruction_id] = {
            "kind": recs[0].instruction_kind,
            "metric": recs[0].metric,
            "score": sum(r.score for r in recs) / len(recs),
            "n": len(recs),
        }
    by_kind: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for task, instrs in per_task.items():
        for entry in instrs.values():
            by_kind[entry["kind"]][task].append(entry["score"])
    kinds_summary: dict[str, Any] = {}
    for kind, tasks in sorted(by_kind.items()):
        all_scores = [s for scores in tasks.values() for s in scores]
        task_means = [sum(s) / len(s) for s in tasks.values()]
        kinds_summary[kind] = {
            "n_phrasings": len(all_scores),
            "n_tasks": len(tasks),
            "mean": sum(task_means) / len(task_means),
            "min": min(all_scores),
            "max": max(all_scores),
            "std": statistics.stdev(all_scores) if len(all_scores) > 1 else None,
        }
    return {"tasks": dict(per_task), "kinds": kinds_summary}


@dataclass
class EvalResult:
    run_id: str
    out_dir: Path
    records: list[Record]
    summary: dict[str, Any]
    computed: int  # model requests computed in this call (0 on a full cache hit)
    skipped: dict[str, int]


def _chunks(seq: Sequence[WorkItem], size: int) -> list[Sequence[WorkItem]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def evaluate(
    config: EvalConfig,
    *,
    backend: Backend | None = None,
    show_progress: bool = True,
    chunk_size: int | None = None,
) -> EvalResult:
    """Evaluate ``config`` and write ``heedful.sqlite``, ``records.jsonl``, ``results.json`` into ``config.out``.

    Model outputs are saved after every chunk, so a killed run loses at most one chunk;
    re-running the same config resumes and produces the same files.
    """
    _check(config)
    tasks = load_data(config.data, seed=config.seed)
    backend = backend or load_configured(config.model)
    items, skipped = plan_work(tasks, config, backend)
    assign_keys(items, config)
    run_id = run_id_for(config)
    files = RunDir(config.out)
    with Store(files.store) as store:
        store.start_run(run_id, "eval", {"config": dataclasses.asdict(config)}, environment())
        size = chunk_size or max(config.scoring.batch_size * 4, 16)
        computed = _compute_missing(store, run_id, items, backend, config, size, show_progress)
        outputs = store.get_outputs({it.key for it in items})
        records = [make_record(it, outputs[it.key], config) for it in items]
        summary = summarize(records)
        results = {
            "run_id": run_id,
            "config": dataclasses.asdict(config),
            "environment": environment(),
            "seeds": {"seed": config.seed},
            "truncated_prompts": getattr(backend, "truncation_count", 0),
            "skipped_unfit": skipped,
            **summary,
        }
        if config.baselines:
            results["baselines"] = baseline_report(
                tasks, records, label_spaces_file=config.prompts.label_spaces, seed=config.seed
            )
        write_jsonl_atomic(files.records, (_without_key(r.to_dict()) for r in records))
        write_json_atomic(files.results, results)
        store.finish_run(run_id)
    return EvalResult(run_id, Path(config.out), records, summary, computed, skipped)


def _check(config: EvalConfig) -> None:
    """Settings a config built in code (not parsed from flags) may get wrong: fail before the model loads."""
    if config.scoring.rank not in SCORING_METHODS:
        raise HeedfulError(f"unknown scoring.rank '{config.scoring.rank}': use one of {', '.join(SCORING_METHODS)}")
    if config.prompts.on_unfit not in ("error", "skip"):
        raise HeedfulError(f"prompts.on_unfit must be 'error' or 'skip', not '{config.prompts.on_unfit}'")
    for spec in config.prompts.perturb or ():
        parse_perturbation(spec)


def _compute_missing(
    store: Store, run_id: str, items: Sequence[WorkItem], backend: Backend, config: EvalConfig, chunk_size: int,
    show_progress: bool,
) -> int:
    """Ask the model what the cache lacks, chunk by chunk, storing outputs and records as they come.

    Returns how many distinct requests were computed (0 on a full cache hit).
    """
    cached = store.get_outputs({it.key for it in items})
    by_key: dict[str, list[WorkItem]] = defaultdict(list)
    for it in items:
        by_key[it.key].append(it)
    # Prompt order puts prompts that share a prefix (one phrasing's instances) in one chunk,
    # where the backend runs that prefix once for all of them.
    pending = sorted((group[0] for key, group in by_key.items() if key not in cached), key=lambda it: it.example.prompt)

    def put_records(outputs: dict[str, dict[str, Any]]) -> None:
        made = [make_record(it, outputs[key], config) for key in outputs for it in by_key[key]]
        store.put_records(run_id, [record.to_dict() for record in made])

    put_records(cached)  # cached outputs are stored already; only their records may be new
    with progress_bar("evaluating", total=len(pending), enabled=show_progress) as advance:
        for chunk in _chunks(pending, chunk_size):
            outputs = compute_outputs(backend, chunk, config)
            store.put_outputs(outputs)
            put_records(outputs)
            advance(len(chunk))
    return len(pending)


def _without_key(record: dict[str, Any]) -> dict[str, Any]:
    """A record as records.jsonl holds it: without the cache key, which only the store needs."""
    return {k: v for k, v in record.items() if k != "output_key"}


def chat_wrapper(backend: Backend) -> Callable[[str], str]:
    tokenizer = backend.tokenizer
    if getattr(tokenizer, "chat_template", None) is None:
        raise HeedfulError(f"model {backend.name} has no chat template: drop --model.chat")

    def wrap(prompt: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    return wrap
