"""Multiple-choice scoring speed: heedful's backend vs lm-evaluation-harness's ``hf`` model.

Both score the same BIG-bench Lite items (a seeded sample across the multiple-choice
tasks, each rendered with its task's designer instruction) with the same plain SmolLM2
checkpoint. heedful packs each batch's prompts and their options into rows with a block
mask, so each prompt runs once for all its options, with no padding (and a prefix that
several prompts share runs once); lm-eval reads the prompt again for every option (except
one-token options, whose identical inputs its logits cache merges). Per-option
log-likelihoods and predictions are compared, and heedful's time is set against a compute
limit: the matmul time of the model's own linear shapes over the tokens that must be read
once prefixes are shared.

    python benchmarks/bench_scoring.py --items 200 --runs 3 --dtype float32 --threads 2
    python benchmarks/bench_scoring.py --items 200 --runs 3 --dtype bfloat16 --threads 2
    python benchmarks/bench_scoring.py --workload robustness --runs 3 --dtype float32 --threads 2

``--workload robustness`` scores what a robustness study scores instead: the same
instances under many phrasings (``--phrasings`` of ``designer,heedful`` × ``--instances``
× ``--tasks`` BIG-bench Lite tasks), whose prompts share each phrasing's instruction.
heedful runs that shared prefix once per phrasing (and batch); the token counts printed are
lm-eval's, heedful's before sharing and after, and the compute limit counts the tokens
after sharing. Its results go to benchmarks/results/scoring-robustness.json.

In bfloat16 heedful runs in bf16 and lm-eval twice: float32 (the reference for log-
likelihoods, predictions and the speed target) and bfloat16. The lm-eval warm-up goes
through ``lm_eval.simple_evaluate`` with a generated local task (YAML + JSONL in a temp
folder) and checks that it scores exactly the strings heedful scores; the timed lm-eval
runs call ``HFLM.loglikelihood`` on the same requests, which excludes lm-eval's task
overhead (conservative for the ratio). Results merge into benchmarks/results/scoring.json
under the dtype's key. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scoring.json"
ROBUSTNESS_RESULTS = ROOT / "benchmarks" / "results" / "scoring-robustness.json"
MODEL = "smollm2-135m-instruct"
LM_EVAL_TASK = "heedful_bench_bbl_mc"
LM_HEAD_ROWS = 256
TARGETS = {"float32": 4.0, "bfloat16": 5.0}  # minimum items/s ratio over lm-eval float32 (issue 14)
ROBUSTNESS_TARGET = 6.0  # minimum items/s ratio over lm-eval float32 on the robustness workload


@dataclass(frozen=True)
class Item:
    """One rendered multiple-choice example: the prompt and the exact strings scored after it."""

    task: str
    instance_id: str
    context: str
    continuations: tuple[str, ...]
    gold: int
    phrasing: str = ""  # the instruction's id (robustness workload)


# --------------------------------------------------------------------------- items
def build_items(n: int, *, seed: int = 0, suite: str = "bbl-mc") -> list[Item]:
    """A seeded sample of ``n`` items spread evenly over the suite's tasks.

    Each task contributes ``ceil(n / tasks)`` randomly chosen instances (fewer if it
    has fewer), rendered with its designer instruction; the pool is then shuffled and
    cut to ``n``. Continuations follow the runner's rule (a leading space unless the
    prompt ends in whitespace).
    """
    from heedful.errors import HeedfulError
    from heedful.prompts.builtin import designer_instruction
    from heedful.prompts.demos import continuation_strings
    from heedful.prompts.render import render_instruction
    from heedful.tasks.spec import load_tasks

    rng = random.Random(seed)
    tasks = load_tasks(f"bigbench:{suite}", seed=seed)
    per_task = math.ceil(n / max(len(tasks), 1))
    pool: list[Item] = []
    for task in tasks:
        instruction = designer_instruction(task)
        candidates = [inst for inst in task.instances if inst.options]
        rng.shuffle(candidates)
        taken = 0
        for inst in candidates:
            if taken == per_task:
                break
            try:
                ex = render_instruction(instruction, task, inst)
            except HeedfulError:
                continue  # the designer template does not fit this instance
            if not ex.choices or ex.gold is None:
                continue
            pool.append(Item(task.name, inst.id, ex.prompt, continuation_strings(ex.prompt, ex.choices), ex.gold))
            taken += 1
    rng.shuffle(pool)
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} items could be rendered from bigbench:{suite}, asked for {n}")
    return pool[:n]


def build_robustness_items(
    *, phrasings: int = 10, instances: int = 20, tasks: int = 10, seed: int = 0, suite: str = "bbl-mc"
) -> list[Item]:
    """``phrasings`` × ``instances`` × ``tasks`` items, as a robustness study scores them.

    ``tasks`` BIG-bench Lite tasks drawn with ``seed`` (one subtask each, the first with
    enough instances); in each, the first ``phrasings`` of ``designer,heedful`` (the
    designer's instruction, then heedful's built-in phrasings) and ``instances`` randomly
    chosen instances that every one of them renders. Item-major by task, then phrasing,
    then instance, as heedful's runner orders its work.
    """
    from heedful.errors import HeedfulError
    from heedful.prompts.demos import continuation_strings
    from heedful.prompts.render import render_instruction
    from heedful.prompts.sources import InstructionSources, base_task_name
    from heedful.tasks.spec import load_tasks

    rng = random.Random(seed)
    sources = InstructionSources.parse("designer,heedful")
    by_base: dict[str, list[Any]] = {}
    for task in load_tasks(f"bigbench:{suite}", seed=seed):
        by_base.setdefault(base_task_name(task), []).append(task)
    bases = sorted(by_base)
    rng.shuffle(bases)
    out: list[Item] = []
    for base in bases:
        for task in by_base[base]:
            chosen = sources.for_task(task)[:phrasings]
            candidates = [inst for inst in task.instances if inst.options]
            rng.shuffle(candidates)
            rendered: list[list[Item]] = []
            for inst in candidates:
                try:
                    exs = [render_instruction(instruction, task, inst) for instruction in chosen]
                except HeedfulError:
                    continue  # a phrasing does not fit this instance
                if any(not ex.choices or ex.gold is None for ex in exs):
                    continue
                rendered.append([
                    Item(task.name, inst.id, ex.prompt, continuation_strings(ex.prompt, ex.choices), ex.gold, i.id)
                    for i, ex in zip(chosen, exs)
                ])
                if len(rendered) == instances:
                    break
            if len(chosen) == phrasings and len(rendered) == instances:
                out.extend(row[p] for p in range(phrasings) for row in rendered)
                break
        if len(out) == phrasings * instances * tasks:
            return out
    raise SystemExit(f"bigbench:{suite}: fewer than {tasks} tasks with {phrasings} phrasings and {instances} instances")


# ------------------------------------------------------------------- lm-eval task
def write_lm_eval_task(items: Sequence[Item], folder: Path, name: str = LM_EVAL_TASK) -> str:
    """Write a local lm-eval multiple-choice task (``name.yaml`` + ``name.jsonl``) scoring ``items``.

    The choices already carry their leading space, so ``target_delimiter`` is empty and
    lm-eval scores ``context + continuation`` exactly as heedful does. Returns the task name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    with data.open("w") as f:
        for i, item in enumerate(items):
            row = {"idx": i, "context": item.context, "continuations": list(item.continuations), "gold": item.gold}
            f.write(json.dumps(row) + "\n")
    # Plain field names (not Jinja) make lm-eval return the fields untouched.
    yaml = (
        f"task: {name}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(data.resolve()))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: context\n"
        "doc_to_choice: continuations\n"
        "doc_to_target: gold\n"
        'target_delimiter: ""\n'
        "metric_list:\n"
        "  - metric: acc\n"
        "metadata:\n"
        "  version: 1.0\n"
    )
    (folder / f"{name}.yaml").write_text(yaml)
    return name


def lm_eval_instances(items: Sequence[Item]) -> list[Any]:
    """One lm-eval ``loglikelihood`` Instance per (item, option), item-major."""
    from lm_eval.api.instance import Instance

    return [
        Instance(request_type="loglikelihood", doc={"idx": i}, arguments=(item.context, cont), idx=j)
        for i, item in enumerate(items)
        for j, cont in enumerate(item.continuations)
    ]


def regroup(flat: Sequence[float], items: Sequence[Item]) -> list[list[float]]:
    """Split an item-major flat list of option scores back into one list per item."""
    out, k = [], 0
    for item in items:
        out.append(list(flat[k : k + len(item.continuations)]))
        k += len(item.continuations)
    if k != len(flat):
        raise ValueError(f"{len(flat)} scores for {k} options")
    return out


def simple_evaluate_logliks(lm: Any, items: Sequence[Item], folder: Path) -> list[list[float]]:
    """Score ``items`` through ``lm_eval.simple_evaluate`` and a local task; per-option log-likelihoods.

    Raises if lm-eval's requests are not exactly ``(context, continuation)`` of the items.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    name = write_lm_eval_task(items, folder)
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[name],
        task_manager=TaskManager(include_path=str(folder)),
        log_samples=True,
        bootstrap_iters=0,
    )
    logliks: list[list[float] | None] = [None] * len(items)
    for sample in out["samples"][name]:
        i = int(sample["doc"]["idx"])
        item = items[i]
        args = [tuple(a) for a in sample["arguments"]]
        expected = [(item.context, c) for c in item.continuations]
        if args != expected:
            raise AssertionError(f"item {i}: lm-eval scored {args[:1]!r}..., heedful scores {expected[:1]!r}...")
        logliks[i] = [float(r[0][0]) for r in sample["resps"]]
    missing = [i for i, ll in enumerate(logliks) if ll is None]
    if missing:
        raise AssertionError(f"lm-eval returned no sample for items {missing[:5]}")
    return logliks  # type: ignore[return-value]


# ------------------------------------------------------------------------ compare
def compare(ours: Sequence[Sequence[float]], ref: Sequence[Sequence[float]]) -> dict[str, float | int]:
    """Max and mean |Δ log-likelihood| over options, and how often the argmax agrees."""
    diffs = [abs(a - b) for xs, ys in zip(ours, ref, strict=True) for a, b in zip(xs, ys, strict=True)]
    agree = sum(_argmax(xs) == _argmax(ys) for xs, ys in zip(ours, ref, strict=True))
    return {
        "max_abs_diff": max(diffs, default=0.0),
        "mean_abs_diff": statistics.fmean(diffs) if diffs else 0.0,
        "options": len(diffs),
        "same_prediction": agree,
        "items": len(ours),
        "agreement": agree / len(ours) if ours else 1.0,
    }


def accuracy(logliks: Sequence[Sequence[float]], items: Sequence[Item]) -> float:
    """Share of items whose highest-scoring option is gold."""
    return sum(_argmax(ll) == item.gold for ll, item in zip(logliks, items, strict=True)) / max(len(items), 1)


def _argmax(xs: Sequence[float]) -> int:
    return max(range(len(xs)), key=lambda k: xs[k])


# ------------------------------------------------------------------------- tokens
def count_tokens(encoder: Any, items: Sequence[Item]) -> dict[str, int]:
    """Tokens each approach must read, from lm-eval's tokenisation (heedful's PairEncoder mirrors it).

    ``unique``: each context once plus every continuation's tokens (heedful's work);
    ``lm_eval``: what lm-eval's model reads, context + continuation[:-1] per option, with
    identical sequences (one-token options of one prompt) read once, as its logits
    cache does; ``per_option``: context + continuation[:-1] for every option.
    ``logit_positions``: positions whose vocabulary logits heedful computes (last
    context token + continuation[:-1] per option).
    """
    unique = lm = per_option = logit_positions = context = 0
    for item in items:
        ctx, conts = encoder.encode_request(item.context, item.continuations, item.instance_id)
        context += len(ctx)
        unique += len(ctx) + sum(len(c) for c in conts)
        per_option += sum(len(ctx) + len(c) - 1 for c in conts)
        lm += sum(len(ctx) + len(seq) for seq in {tuple(c[:-1]) for c in conts})
        logit_positions += 1 + sum(len(c) - 1 for c in conts)
    return {
        "items": len(items),
        "options": sum(len(i.continuations) for i in items),
        "context": context,
        "unique": unique,
        "lm_eval": lm,
        "per_option": per_option,
        "logit_positions": logit_positions,
    }


def scoring_tokens(backend: Any, score: Callable[[], Any]) -> dict[str, int]:
    """Tokens heedful's backend runs while ``score()`` runs, from its counters (``backend.tokens``).

    ``heedful_before_sharing``: each prompt once plus every option's tokens after its
    first (each prompt's cache shared by its options, as before prefixes were shared);
    ``heedful_after_sharing``: the same with the prefixes that prompts share run once.
    """
    before = dataclasses.asdict(backend.tokens)
    score()
    spent = {k: v - before[k] for k, v in dataclasses.asdict(backend.tokens).items()}
    return {
        "heedful_before_sharing": spent["prompt"] + spent["tails"],
        "heedful_after_sharing": spent["prompt_run"] + spent["tails"],
    }


# -------------------------------------------------------------------- compute limit
def linear_shapes(config: Any) -> dict[str, tuple[int, int, int]]:
    """``name -> (in_features, out_features, count)`` of a llama-style model's matmuls per token."""
    hidden = int(config.hidden_size)
    inter = int(config.intermediate_size)
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    return {
        "q_proj": (hidden, heads * head_dim, layers),
        "k_proj": (hidden, kv_heads * head_dim, layers),
        "v_proj": (hidden, kv_heads * head_dim, layers),
        "o_proj": (heads * head_dim, hidden, layers),
        "gate_proj": (hidden, inter, layers),
        "up_proj": (hidden, inter, layers),
        "down_proj": (inter, hidden, layers),
        "lm_head": (hidden, int(config.vocab_size), 1),
    }


def measure_matmul(rows: int, k: int, n: int, dtype: Any, *, min_seconds: float = 0.3) -> float:
    """FLOP/s of a ``[rows, k]`` input through a ``[n, k]`` weight in ``dtype`` (best of repeated timings).

    Uses ``F.linear`` with the weight in ``nn.Linear``'s layout, as the model does: on
    CPUs without native bf16 a plain ``torch.matmul`` of a ``[k, n]`` bf16 matrix takes a
    much slower path than the model's own layers and would understate the rate.
    """
    import torch
    import torch.nn.functional as F

    a = torch.randn(rows, k).to(dtype)
    w = torch.randn(n, k).to(dtype)
    with torch.inference_mode():
        F.linear(a, w)
        best, spent = math.inf, 0.0
        while spent < min_seconds or best == math.inf:
            t0 = time.perf_counter()
            F.linear(a, w)
            dt = time.perf_counter() - t0
            best, spent = min(best, dt), spent + dt
    return 2.0 * rows * k * n / best


def compute_limit(config: Any, tokens: dict[str, int], dtype: Any, rows: int) -> dict[str, Any]:
    """Time the linear layers alone need for heedful's tokens, at the measured matmul rates.

    Every read token passes the decoder layers' linear maps; only ``logit_positions``
    pass the vocabulary projection. Attention scores, norms and activations are left
    out, so the limit is a lower bound. The vocabulary projection is timed on at most
    ``LM_HEAD_ROWS`` rows (heedful computes logits for few positions per batch).
    """
    shapes = linear_shapes(config)
    per_shape: dict[str, dict[str, float]] = {}
    seconds = 0.0
    flops = 0.0
    for name, (k, n, count) in shapes.items():
        rate = measure_matmul(min(rows, LM_HEAD_ROWS) if name == "lm_head" else rows, k, n, dtype)
        n_tok = tokens["logit_positions"] if name == "lm_head" else tokens["unique"]
        f = 2.0 * k * n * count * n_tok
        per_shape[name] = {"in": k, "out": n, "count": count, "gflops_per_s": rate / 1e9, "flops": f}
        seconds += f / rate
        flops += f
    layer_params = sum(k * n * c for name, (k, n, c) in shapes.items() if name != "lm_head")
    return {
        "rows_per_matmul": rows,
        "linear_params_per_token": layer_params,
        "lm_head_params": shapes["lm_head"][0] * shapes["lm_head"][1],
        "flops": flops,
        "effective_gflops_per_s": flops / seconds / 1e9,
        "limit_s": seconds,
        "shapes": per_shape,
    }


# ----------------------------------------------------------------------- timing
def timed_runs(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Call ``fn`` ``runs`` times; returns the wall times and the last result."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def heedful_logliks(
    backend: Any, items: Sequence[Item], batch_size: int, memory_budget_mb: float | None = None
) -> list[list[float]]:
    from heedful.models import ChoiceRequest

    requests = [ChoiceRequest(item.context, item.continuations) for item in items]
    scores = backend.loglikelihoods(requests, batch_size=batch_size, memory_budget_mb=memory_budget_mb)
    return [list(s.logliks) for s in scores]


def lm_eval_logliks(lm: Any, items: Sequence[Item]) -> list[list[float]]:
    flat = [ll for ll, _ in lm.loglikelihood(lm_eval_instances(items), disable_tqdm=True)]
    return regroup(flat, items)


def load_lm_eval(path: str, dtype: str, batch_size: int) -> Any:
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=path, dtype=dtype, batch_size=batch_size, device="cpu")


def summarize(times: Sequence[float], n_items: int) -> dict[str, Any]:
    med = statistics.median(times)
    return {"runs_s": list(times), "median_s": med, "items_per_s": n_items / med}


# ------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from heedful.models import load_model
    from heedful.models.loading import parse_dtype
    from heedful.models.registry import get_alias
    from heedful.provenance import environment

    torch.set_num_threads(args.threads)
    robustness = args.workload == "robustness"
    if robustness:
        shape = {"phrasings": args.phrasings, "instances": args.instances, "tasks": args.tasks}
        items = build_robustness_items(**shape, seed=args.seed, suite=args.suite)
    else:
        items = build_items(args.items, seed=args.seed, suite=args.suite)
    model_dir = str(get_alias(MODEL).resolve())  # the plain cached copy both sides load
    backend = load_model(model_dir, dtype=args.dtype, threads=args.threads)
    tokens = count_tokens(backend.encoder, items)
    print(f"{len(items)} items, {tokens['options']} options; tokens: unique {tokens['unique']}, lm-eval {tokens['lm_eval']}")

    lm_dtypes = ["float32"] if args.dtype == "float32" or not args.lm_eval_same_dtype else ["float32", args.dtype]
    lms = {d: load_lm_eval(model_dir, d, args.lm_eval_batch_size) for d in lm_dtypes}

    # Warm-ups: heedful once (counting the tokens it runs); each lm-eval model once through
    # simple_evaluate + the local task.
    tokens |= scoring_tokens(backend, lambda: heedful_logliks(backend, items, args.batch_size, args.memory_budget_mb))
    print(f"heedful runs {tokens['heedful_before_sharing']} tokens, {tokens['heedful_after_sharing']} with prefixes shared")
    lm_ref: dict[str, list[list[float]]] = {}
    task_check: dict[str, Any] = {}
    for d, lm in lms.items():
        with tempfile.TemporaryDirectory(prefix="heedful-lmeval-") as tmp:
            t0 = time.perf_counter()
            lm_ref[d] = simple_evaluate_logliks(lm, items, Path(tmp))
            task_check[d] = {"simple_evaluate_s": time.perf_counter() - t0, "same_strings": True}

    # Interleave the timed runs so machine-load drift hits both sides alike.
    times: dict[str, list[float]] = {"heedful": [], **{f"lm_eval_{d}": [] for d in lms}}
    ours: list[list[float]] = []
    lm_last: dict[str, list[list[float]]] = {}
    for r in range(args.runs):
        t, ours = timed_runs(lambda: heedful_logliks(backend, items, args.batch_size, args.memory_budget_mb), 1)
        times["heedful"] += t
        for d, lm in lms.items():
            t, lm_last[d] = timed_runs(lambda lm=lm: lm_eval_logliks(lm, items), 1)
            times[f"lm_eval_{d}"] += t
        print(f"run {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()))
    for d in lms:
        task_check[d]["direct_vs_simple_evaluate_max_abs_diff"] = compare(lm_last[d], lm_ref[d])["max_abs_diff"]

    speed = {k: summarize(v, len(items)) for k, v in times.items()}
    ratios = {f"heedful_{args.dtype}_vs_lm_eval_{d}": speed["heedful"]["items_per_s"] / speed[f"lm_eval_{d}"]["items_per_s"] for d in lms}
    agreement = {f"vs_lm_eval_{d}": compare(ours, lm_last[d]) for d in lms}
    if "bfloat16" in lms:
        agreement["lm_eval_bfloat16_vs_lm_eval_float32"] = compare(lm_last["bfloat16"], lm_last["float32"])

    rows = args.batch_size * max(1, round(tokens["context"] / len(items)))
    # The limit counts the tokens that must be read once prefixes are shared.
    limit_tokens = tokens | {"unique": tokens["heedful_after_sharing"]}
    limit = compute_limit(backend.config, limit_tokens, parse_dtype(args.dtype), rows)
    limit["tokens"] = "heedful_after_sharing"
    limit["heedful_over_limit"] = speed["heedful"]["median_s"] / limit["limit_s"]

    fp32_ratio = ratios[f"heedful_{args.dtype}_vs_lm_eval_float32"]
    fp32_agree = agreement["vs_lm_eval_float32"]
    if robustness:
        met = fp32_ratio >= ROBUSTNESS_TARGET and fp32_agree["max_abs_diff"] <= 1e-3 and fp32_agree["agreement"] == 1.0
        target = "items/s >= 6x lm-eval float32, |dloglik| <= 1e-3, same predictions (heedful / limit <= 1.3 reported)"
    elif args.dtype == "float32":
        met = fp32_ratio >= TARGETS["float32"] and fp32_agree["max_abs_diff"] <= 1e-3 and fp32_agree["agreement"] == 1.0
        target = "items/s >= 4x lm-eval float32, |dloglik| <= 1e-3, same predictions"
    else:
        met = fp32_ratio >= TARGETS.get(args.dtype, 5.0) and fp32_agree["agreement"] >= 0.99
        target = "items/s >= 5x lm-eval float32, same prediction as lm-eval float32 on >= 99% of items"

    return {
        "config": {
            "model": MODEL,
            "model_dir": model_dir,
            "dtype": args.dtype,
            "lm_eval_dtypes": lm_dtypes,
            "workload": args.workload,
            **(shape if robustness else {}),
            "items": len(items),
            "suite": args.suite,
            "runs": args.runs,
            "warmup_runs": 1,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "memory_budget_mb": args.memory_budget_mb,
            "lm_eval_batch_size": args.lm_eval_batch_size,
            "lm_eval_timing": "HFLM.loglikelihood on the items' (context, continuation) Instances",
        },
        "seeds": {"sample": args.seed, "bigbench_option_shuffle": args.seed},
        "environment": environment()
        | {"lm_eval": _version("lm_eval"), "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "tasks": _task_counts(items),
        "speed": speed,
        "ratios": ratios,
        "agreement": agreement,
        "accuracy": {"heedful": accuracy(ours, items), **{f"lm_eval_{d}": accuracy(v, items) for d, v in lm_last.items()}},
        "lm_eval_task_check": task_check,
        "tokens": tokens,
        "compute_limit": limit,
        "target": {"description": target, "met": met},
    }


def _version(pkg: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(pkg.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return None


def _task_counts(items: Sequence[Item]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.task] = counts.get(item.task, 0) + 1
    return dict(sorted(counts.items()))


def print_summary(result: dict[str, Any]) -> None:
    """A plain-text table of the headline numbers."""
    cfg, speed = result["config"], result["speed"]
    print(f"\n{cfg['workload']} workload: {cfg['items']} items, dtype {cfg['dtype']}, {cfg['threads']} threads, median of {cfg['runs']} runs")
    print(f"{'system':<22}{'median s':>10}{'items/s':>10}")
    for name, s in speed.items():
        label = f"heedful {cfg['dtype']}" if name == "heedful" else name.replace("lm_eval_", "lm-eval ")
        print(f"{label:<22}{s['median_s']:>10.2f}{s['items_per_s']:>10.2f}")
    for name, ratio in result["ratios"].items():
        print(f"ratio {name}: {ratio:.2f}x")
    for name, a in result["agreement"].items():
        print(f"{name}: max|dLL| {a['max_abs_diff']:.2e}, mean {a['mean_abs_diff']:.2e}, same prediction {a['same_prediction']}/{a['items']}")
    t, lim = result["tokens"], result["compute_limit"]
    print(f"tokens: unique {t['unique']}, lm-eval reads {t['lm_eval']} ({t['lm_eval'] / t['unique']:.2f}x)")
    print(
        f"tokens heedful runs: {t['heedful_before_sharing']} before sharing prefixes, {t['heedful_after_sharing']} after "
        f"(lm-eval reads {t['lm_eval'] / t['heedful_after_sharing']:.2f}x as many)"
    )
    print(
        f"compute limit ({lim.get('tokens', 'unique')} tokens) {lim['limit_s']:.2f}s at "
        f"{lim['effective_gflops_per_s']:.1f} GFLOP/s; "
        f"heedful / limit = {lim['heedful_over_limit']:.2f}"
    )
    print(f"target ({result['target']['description']}): {'met' if result['target']['met'] else 'NOT met'}")


def write_result(result: dict[str, Any], path: Path) -> None:
    """Merge ``result`` into ``path`` under its dtype key, keeping the other dtype's entry."""
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
    p.add_argument(
        "--workload",
        choices=("bbl", "robustness"),
        default="bbl",
        help="bbl: --items BIG-bench Lite items; robustness: --phrasings x --instances x --tasks",
    )
    p.add_argument("--items", type=int, default=200, help="number of BIG-bench Lite items (bbl workload)")
    p.add_argument("--phrasings", type=int, default=10, help="phrasings per task (robustness workload, at most 10)")
    p.add_argument("--instances", type=int, default=20, help="instances per task (robustness workload)")
    p.add_argument("--tasks", type=int, default=10, help="BIG-bench Lite tasks (robustness workload)")
    p.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (median reported)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="heedful's dtype")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--batch-size", type=int, default=8, help="heedful batch size (items, all options each)")
    p.add_argument(
        "--memory-budget-mb", type=float, default=512, help="heedful's memory per batch (scoring.memory_budget_mb)"
    )
    p.add_argument("--lm-eval-batch-size", type=int, default=16, help="lm-eval batch size ((context, option) pairs)")
    p.add_argument(
        "--lm-eval-same-dtype",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="in bfloat16 also time lm-eval in bf16 (slow on CPUs without native bf16)",
    )
    p.add_argument("--seed", type=int, default=0, help="item sample and option-shuffle seed")
    p.add_argument("--suite", default="bbl-mc", choices=("bbl-mc", "bbl-sun14"), help="BIG-bench Lite suite")
    p.add_argument(
        "--out", type=Path, help=f"results JSON, merged per dtype (default {RESULTS.name}, {ROBUSTNESS_RESULTS.name})"
    )
    args = p.parse_args(argv)
    if args.out is None:
        args.out = ROBUSTNESS_RESULTS if args.workload == "robustness" else RESULTS
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    write_result(result, args.out)
    print_summary(result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
