"""Greedy generation speed: heedful's batched loop vs transformers' ``model.generate``.

Both decode the same SuperNI prompts with the same SmolLM2 checkpoint: one test instance
from each of ``--prompts`` generation tasks of the SuperNI test split (a seeded sample),
rendered with ``--encoding`` (Tk-Instruct's ``def+pos2``: definition and two positive
demonstrations) and cut to ``--max-source-tokens`` as Tk-Instruct cuts them. All sides see
the same length-sorted batches of ``--batch-size``, ``--max-new-tokens`` and stop strings
(the evaluation's defaults: 64 and a newline).

- ``heedful``: ``HFBackend._greedy_tokens`` → ``heedful.models.greedy``: one prefill pass,
  then one token per step on the key/value cache; stop strings are checked on the fly and
  each row leaves the batch (input id, mask, position, cache row) as it stops. Prompts
  that share a prefix (``--per-task`` > 1: a task's definition and demonstrations) read
  its cache, computed once.
- ``generate_stop``: ``model.generate`` greedy search with heedful's stop rule as a
  ``StoppingCriteria`` (what heedful ran before): a finished row stays in the batch.
- ``generate_plain``: ``model.generate`` stopped by EOS only; the stop rule cuts the text
  afterwards.

The answers (text after the stop rule) must be identical. Tokens/s counts each answer's
tokens up to and including its EOS or stop token, the same count for every side, so the
ratios are time ratios. ``prefill`` times the prompts' forward pass alone (the same
batches), the work every side shares; the decode-only ratios leave it out.

    python benchmarks/bench_generate.py --prompts 32 --runs 3 --threads 2
    python benchmarks/bench_generate.py --prompts 32 --per-task 8 --runs 3 --out benchmarks/results/generate-per-task.json

Writes benchmarks/results/generate.json (one entry per dtype). Target: heedful at least 2x
the tokens/s of the faster ``model.generate`` variant, with identical answers. Run on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "generate.json"
MODEL = "smollm2-135m-instruct"
TARGET = 2.0  # minimum tokens/s ratio of heedful over the faster model.generate variant
SIDES = ("heedful", "generate_stop", "generate_plain")


def default_superni() -> Path:
    """The shared SuperNI copy: ``$HEEDFUL_SHARED_DATA/superni``, else ``shared/data/superni`` beside the checkout."""
    shared = os.environ.get("HEEDFUL_SHARED_DATA")
    return (Path(shared) if shared else ROOT.parent / "shared" / "data") / "superni"


@dataclass(frozen=True)
class Prompt:
    """One rendered generation prompt and where it came from."""

    task: str
    instance_id: str
    text: str


# --------------------------------------------------------------------------- prompts
def build_prompts(
    n: int,
    *,
    superni: Path,
    tokenizer: Any,
    seed: int = 0,
    encoding: str = "def+pos2",
    max_source_tokens: int = 1024,
    per_task: int = 1,
) -> list[Prompt]:
    """``per_task`` seeded test instances from each of ``n / per_task`` seeded generation tasks of the SuperNI test split.

    One per task spreads the prompts over tasks (nothing shared but the chat header);
    several per task is an evaluation's shape, where a task's prompts share its definition
    and demonstrations.
    """
    from heedful.prompts.superni import encode_superni
    from heedful.tasks.superni import load_superni
    from heedful.tasks.types import TaskType

    split = superni / "splits" / "test_tasks.txt"
    tasks = load_superni(superni, split_file=split if split.is_file() else None)
    tasks = [t for t in tasks if t.type is TaskType.GENERATION]
    n_tasks = -(-n // per_task)
    if len(tasks) < n_tasks:
        raise SystemExit(f"{superni}: only {len(tasks)} generation tasks, asked for {n_tasks}")
    rng = random.Random(seed)
    prompts = []
    for task in rng.sample(tasks, n_tasks):
        pool = [i for i in task.instances if i.split == "test"] or list(task.instances)
        for inst in rng.sample(pool, min(per_task, len(pool))):
            text = encode_superni(task, inst.input, encoding, tokenizer=tokenizer, max_source_length=max_source_tokens)
            prompts.append(Prompt(task.name, inst.id, text))
    return prompts[:n]


# ---------------------------------------------------------------------------- sides
def heedful_tokens(
    backend: Any, rows: Sequence[list[int]], max_new_tokens: int, stops: Sequence[str], batch_size: int
) -> list[list[int]]:
    """Each row's answer tokens from heedful's loop (the path ``backend.generate`` takes, prefix sharing included)."""
    return backend._greedy_tokens(list(rows), max_new_tokens, stops, batch_size=batch_size)


def generate_tokens(
    backend: Any,
    rows: Sequence[list[int]],
    max_new_tokens: int,
    stops: Sequence[str],
    batch_size: int,
    *,
    on_the_fly: bool,
) -> list[list[int]]:
    """Each row's new tokens from ``model.generate`` on the same left-padded batches, cut after EOS.

    ``on_the_fly``: heedful's stop rule runs as a ``StoppingCriteria`` (the row is then
    padded up to the batch's last step); otherwise only EOS stops a row.
    """
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    from heedful.models.backend import _AnswerStop
    from heedful.models.batching import pad_left, run_sorted

    eos = backend.eos_ids
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        pad_token_id=backend.pad_id,
        eos_token_id=sorted(eos) or None,
    )

    def run(batch: list[list[int]]) -> list[list[int]]:
        ids, mask = pad_left(batch, backend.pad_id)
        criteria = None
        if on_the_fly and stops:
            criteria = StoppingCriteriaList([_AnswerStop(backend.tokenizer, stops, ids.shape[1], False)])
        with torch.inference_mode():
            out = backend.model.generate(
                input_ids=ids.to(backend.device),
                attention_mask=mask.to(backend.device),
                generation_config=config,
                stopping_criteria=criteria,
            )
        new = out[:, ids.shape[1] :].tolist()
        return [row[: next((k + 1 for k, t in enumerate(row) if t in eos), len(row))] for row in new]

    return run_sorted(rows, length=len, batch_size=batch_size, run_batch=run)


def prefill(backend: Any, rows: Sequence[list[int]], batch_size: int) -> None:
    """The prompts' forward pass alone, batched as the sides batch them (logits of the last position only)."""
    import torch

    from heedful.models.batching import pad_left, run_sorted

    extra = {"logits_to_keep": 1} if backend._logits_to_keep else {}

    def run(batch: list[list[int]]) -> list[None]:
        ids, mask = pad_left(batch, backend.pad_id)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = backend.device
        with torch.inference_mode():
            backend.model(
                input_ids=ids.to(dev),
                attention_mask=mask.to(dev),
                position_ids=positions.to(dev),
                use_cache=True,
                **extra,
            )
        return [None] * len(batch)

    run_sorted(rows, length=len, batch_size=batch_size, run_batch=run)


def answer_text(tokenizer: Any, tokens: Sequence[int], eos: set[int], stops: Sequence[str]) -> str:
    """The answer ``backend.generate`` returns for these new tokens."""
    from heedful.models.stops import cut_at_stop

    return cut_at_stop(tokenizer.decode([t for t in tokens if t not in eos], skip_special_tokens=True), stops)


# ------------------------------------------------------------------------ compare
def compare(
    tokenizer: Any, eos: set[int], stops: Sequence[str], ours: Sequence[list[int]], theirs: Sequence[list[int]]
) -> dict[str, Any]:
    """How many answers are the same text, and how many of our token rows start theirs."""
    texts = [
        (answer_text(tokenizer, a, eos, stops), answer_text(tokenizer, b, eos, stops))
        for a, b in zip(ours, theirs, strict=True)
    ]
    differ = [k for k, (a, b) in enumerate(texts) if a != b]
    return {
        "prompts": len(texts),
        "same_text": len(texts) - len(differ),
        "same_token_prefix": sum(b[: len(a)] == a for a, b in zip(ours, theirs, strict=True)),
        "differ": [{"index": k, "heedful": texts[k][0], "generate": texts[k][1]} for k in differ[:5]],
    }


def summarize(times: Sequence[float], tokens: int) -> dict[str, Any]:
    med = statistics.median(times)
    return {"runs_s": list(times), "median_s": med, "tokens_per_s": tokens / med}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# ---------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from heedful.models import load_model
    from heedful.provenance import environment

    torch.manual_seed(args.seed)
    backend = load_model(args.model, dtype=args.dtype, threads=args.threads)
    if backend.is_seq2seq or backend._cache_keyword is None:
        raise SystemExit(f"{args.model}: heedful's loop needs a causal model with a reusable key/value cache")
    prompts = build_prompts(
        args.prompts,
        superni=args.superni,
        tokenizer=backend.tokenizer,
        seed=args.seed,
        encoding=args.encoding,
        max_source_tokens=args.max_source_tokens,
        per_task=args.per_task,
    )
    rows = backend._fit_prompts([p.text for p in prompts], backend._generation_budget(args.max_new_tokens))
    stops = [s for s in args.stop if s]
    eos = backend.eos_ids
    sides: dict[str, Callable[[], list[list[int]]]] = {
        "heedful": lambda: heedful_tokens(backend, rows, args.max_new_tokens, stops, args.batch_size),
        "generate_stop": lambda: generate_tokens(
            backend, rows, args.max_new_tokens, stops, args.batch_size, on_the_fly=True
        ),
        "generate_plain": lambda: generate_tokens(
            backend, rows, args.max_new_tokens, stops, args.batch_size, on_the_fly=False
        ),
    }
    n_tokens, longest = sum(map(len, rows)), max(map(len, rows))
    print(f"{len(prompts)} prompts, {n_tokens} prompt tokens (longest {longest}), batch {args.batch_size}")

    # Warm-up, then interleaved timed runs so machine-load drift hits every side alike.
    for fn in sides.values():
        fn()
    prefill(backend, rows, args.batch_size)
    times: dict[str, list[float]] = {name: [] for name in (*SIDES, "prefill")}
    outputs: dict[str, list[list[int]]] = {}
    for r in range(args.runs):
        for name, fn in sides.items():
            t, outputs[name] = timed(fn)
            times[name].append(t)
        times["prefill"].append(timed(lambda: prefill(backend, rows, args.batch_size))[0])
        print(f"run {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))

    answer_tokens = sum(len(t) for t in outputs["heedful"])
    speed = {name: summarize(times[name], answer_tokens) for name in SIDES}
    speed["prefill"] = {"runs_s": times["prefill"], "median_s": statistics.median(times["prefill"])}
    pre = speed["prefill"]["median_s"]
    ours = speed["heedful"]["median_s"]
    ratios = {f"heedful_vs_{name}": speed[name]["median_s"] / ours for name in SIDES[1:]}
    decode_ratios = {
        f"heedful_vs_{name}": (speed[name]["median_s"] - pre) / (ours - pre) if ours > pre else None
        for name in SIDES[1:]
    }
    agreement = {
        f"vs_{name}": compare(backend.tokenizer, eos, stops, outputs["heedful"], outputs[name]) for name in SIDES[1:]
    }
    same = all(a["same_text"] == a["prompts"] for a in agreement.values())
    headline = min(ratios.values())
    lengths = [len(t) for t in outputs["heedful"]]
    return {
        "config": {
            "model": args.model,
            "dtype": args.dtype,
            "prompts": len(prompts),
            "per_task": args.per_task,
            "encoding": args.encoding,
            "max_source_tokens": args.max_source_tokens,
            "max_new_tokens": args.max_new_tokens,
            "stop": stops,
            "batch_size": args.batch_size,
            "runs": args.runs,
            "warmup_runs": 1,
            "threads": args.threads,
            "superni": str(args.superni),
        },
        "seeds": {"sample": args.seed, "torch": args.seed},
        "environment": environment() | {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "prompts": [{"task": p.task, "instance_id": p.instance_id, "tokens": len(r)} for p, r in zip(prompts, rows)],
        "tokens": {
            "prompt": sum(map(len, rows)),
            "answer": answer_tokens,
            "answer_lengths": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
            "reached_max_new_tokens": sum(n == args.max_new_tokens for n in lengths),
        },
        "speed": speed,
        "ratios": ratios,
        "decode_only_ratios": decode_ratios,
        "agreement": agreement,
        "target": {
            "description": f"tokens/s >= {TARGET}x the faster model.generate variant, identical answers",
            "ratio": headline,
            "met": headline >= TARGET and same,
        },
    }


def print_summary(result: dict[str, Any]) -> None:
    """A plain-text table of the headline numbers."""
    cfg, speed = result["config"], result["speed"]
    print(f"\n{cfg['prompts']} prompts, {cfg['dtype']}, {cfg['threads']} threads, median of {cfg['runs']} runs")
    print(f"{'side':<16}{'median s':>10}{'tokens/s':>10}")
    for name in SIDES:
        print(f"{name:<16}{speed[name]['median_s']:>10.2f}{speed[name]['tokens_per_s']:>10.2f}")
    print(f"{'prefill':<16}{speed['prefill']['median_s']:>10.2f}")
    for name, ratio in result["ratios"].items():
        decode = result["decode_only_ratios"][name]
        print(f"ratio {name}: {ratio:.2f}x (decode only: {'n/a' if decode is None else f'{decode:.2f}x'})")
    for name, a in result["agreement"].items():
        print(
            f"{name}: same answer {a['same_text']}/{a['prompts']}, same tokens {a['same_token_prefix']}/{a['prompts']}"
        )
    print(f"target ({result['target']['description']}): {'met' if result['target']['met'] else 'NOT met'}")


def write_result(result: dict[str, Any], path: Path) -> None:
    """Merge ``result`` into ``path`` under its dtype key, keeping the other dtypes' entries."""
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data[result["config"]["dtype"]] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=32, help="number of SuperNI prompts")
    p.add_argument(
        "--per-task", type=int, default=1,
        help="prompts per generation task (1: spread over tasks; more: an evaluation's shape, sharing each task's prefix)",
    )
    p.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (median reported)")
    p.add_argument("--model", default=MODEL, help="model alias or checkpoint folder (heedful's load_model)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="model dtype")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per batch (all sides)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="generation length limit")
    p.add_argument("--stop", action="append", default=None, help="a stop string (repeatable; default: newline)")
    p.add_argument("--encoding", default="def+pos2", help="SuperNI prompt encoding")
    p.add_argument("--max-source-tokens", type=int, default=1024, help="prompt length limit (Tk-Instruct's cut)")
    p.add_argument(
        "--superni", type=Path, default=default_superni(), help="SuperNI data (tasks/, splits/test_tasks.txt)"
    )
    p.add_argument("--seed", type=int, default=0, help="task and instance sample seed")
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON (merged per dtype)")
    args = p.parse_args(argv)
    if args.stop is None:
        args.stop = ["\n"]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    write_result(result, args.out)
    print_summary(result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
