"""Training speed and peak memory: heedful's loop vs a plain transformers ``Trainer``.

Every configuration runs in a fresh subprocess (so ``ru_maxrss`` is that run's own peak
resident memory, model loading included) on the same SuperNI examples, batch size,
sequence limits, learning rate, constant schedule and length grouping. Throughput is
non-padding tokens per second over the optimizer steps after the first (warm-up).
Each configuration runs ``--repeats`` times; the median is reported.

heedful's configurations run under the allocator the ``heedful`` command gives them
(tcmalloc where installed, see ``heedful.allocator``); the Trainer's under the system
one, as a plain script runs. ``+glibc`` runs heedful with the system allocator and
``+tcmalloc`` the Trainer with tcmalloc, to separate the allocator's share of the ratio.

    python benchmarks/bench_train.py                     # all configs, 3 repeats
    python benchmarks/bench_train.py --configs heedful-full,trainer-full --steps 4 --repeats 1

Writes benchmarks/results/train.json. Target: heedful full fine-tuning at 1.5x the
Trainer's tokens/s or more at 0.6x its peak memory or less. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUPERNI = ROOT / ".." / "shared" / "data" / "superni" / "tasks"
TASKS = ("task1385_anli_r1_entailment.json", "task1344_glue_entailment_classification.json")
# heedful-full uses the loop's default (every other decoder layer recomputed in backward);
# heedful-full+noac keeps every activation, +gc recomputes every layer (both runners).
CONFIGS = (
    "heedful-full", "heedful-lora", "heedful-prefix", "heedful-full+gc", "heedful-full+noac", "heedful-full+glibc",
    "trainer-full", "trainer-lora", "trainer-prefix", "trainer-full+gc", "trainer-full+tcmalloc",
)
RESULTS = ROOT / "benchmarks" / "results" / "train.json"


def build_features(tokenizer, budget: int, max_source: int, max_target: int):
    from heedful.tasks.sampling import select_instances
    from heedful.tasks.superni import load_superni
    from heedful.train.data import render_examples, tokenize_all

    examples = []
    for name in TASKS:
        task = load_superni(SUPERNI / name)[0]
        chosen = select_instances(task, "train", budget, seed=0)
        examples += render_examples(task, chosen, "def+pos2", tokenizer=tokenizer, max_source_length=max_source)
    return tokenize_all(examples, tokenizer, is_seq2seq=False, max_source_length=max_source, max_target_length=max_target)


def worker(args: argparse.Namespace) -> dict:
    """One configuration in this (fresh) process; returns its measurements."""
    import torch

    from heedful.allocator import allocator
    from heedful.models import load_model
    from heedful.train.methods import MethodConfig, apply_method

    torch.set_num_threads(args.threads)
    backend = load_model(args.model)
    model, tokenizer = backend.model, backend.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    features = build_features(tokenizer, args.budget, args.max_source, args.max_target)
    runner, method = args.worker.split("-", 1)
    method, _, extra = method.partition("+")
    torch.manual_seed(0)
    model = apply_method(model, MethodConfig(name=method), is_seq2seq=False).train()
    if extra == "gc":  # gradient checkpointing, the same call for both runners
        from heedful.train.methods import enable_gradient_checkpointing

        enable_gradient_checkpointing(model)
    times: list[float] = []
    tokens: list[int] = []
    if runner == "heedful":
        from heedful.train.config import LoopConfig
        from heedful.train.trainer import train_loop

        last = [0]

        def on_step(state) -> None:
            times.append(time.perf_counter())
            tokens.append(state.tokens - last[0])
            last[0] = state.tokens

        import tempfile

        config = LoopConfig(learning_rate=5e-5, epochs=100, max_steps=args.steps, batch_size=args.batch_size)
        if extra == "noac":
            config.activation_checkpoint_every = 0
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            train_loop(model, tokenizer, features, config, tmp, is_seq2seq=False, on_step=on_step, show_progress=False)
    else:
        times, tokens, start = _run_trainer(model, tokenizer, features, args)
    # the first step pays one-off costs (allocator growth, lazy init): leave it out
    steady_time = times[-1] - times[0]
    steady_tokens = sum(tokens[1:])
    return {
        "config": args.worker,
        "steps": len(times),
        "tokens_per_s": steady_tokens / steady_time if steady_time > 0 else None,
        "first_step_s": times[0] - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "allocator": allocator(),
    }


def _run_trainer(model, tokenizer, features, args):
    """The baseline: transformers' Trainer on the same tokenised examples."""
    import tempfile

    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    rows = [{"input_ids": f.input_ids, "labels": f.labels} for f in features]
    batch_tokens: list[int] = []

    def collate(batch):
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
        batch_tokens.append(int(mask.sum()))
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    times: list[float] = []
    tokens: list[int] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *_a, **_k):
            times.append(time.perf_counter())
            tokens.append(batch_tokens[len(times) - 1])

    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            learning_rate=5e-5,
            lr_scheduler_type="constant",
            max_steps=args.steps,
            train_sampling_strategy="group_by_length",
            save_strategy="no",
            report_to=[],
            logging_strategy="no",
            use_cpu=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
            seed=0,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collate, callbacks=[Timer()])
        start = time.perf_counter()
        trainer.train()
    return times, tokens, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--budget", type=int, default=32, help="training instances per task")
    parser.add_argument("--max-source", type=int, default=256)
    parser.add_argument("--max-target", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return

    from heedful.io import write_json_atomic
    from heedful.provenance import environment

    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "out", "configs")}
    report: dict = {"settings": settings, "environment": environment(), "configs": {}}
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for config in configs:
        if config not in CONFIGS:
            raise SystemExit(f"unknown config {config}; expected one of {', '.join(CONFIGS)}")
    # Repeats interleave the configurations, so a drift in the machine's speed (about 10 %
    # here over minutes) lands on every configuration alike instead of on the later ones.
    runs: dict[str, list[dict]] = {config: [] for config in configs}
    for _ in range(args.repeats):
        for config in configs:
            cmd = [sys.executable, __file__, "--worker", config, *_forward(args)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=_worker_env(config))
            line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if done.returncode != 0 or line is None:
                raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
            runs[config].append(json.loads(line[len("RESULT ") :]))
            print(config, runs[config][-1], file=sys.stderr)
    for config in configs:
        report["configs"][config] = {
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in runs[config]),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs[config]),
            "runs": runs[config],
        }
    cfg = report["configs"]
    pairs = {method: (f"heedful-{method}", f"trainer-{method}") for method in ("full", "lora", "prefix", "full+gc")}
    # heedful's other memory settings against the plain Trainer
    for variant in ("full+gc", "full+noac", "full+glibc"):
        pairs[f"{variant} vs trainer full"] = (f"heedful-{variant}", "trainer-full")
    pairs["full vs trainer full+tcmalloc"] = ("heedful-full", "trainer-full+tcmalloc")  # both under tcmalloc
    for name, (ours, base) in pairs.items():
        if cfg.get(ours) and cfg.get(base):
            report.setdefault("vs_trainer", {})[name] = {
                "speed_ratio": cfg[ours]["tokens_per_s"] / cfg[base]["tokens_per_s"],
                "memory_ratio": cfg[ours]["peak_rss_mb"] / cfg[base]["peak_rss_mb"],
            }
    write_json_atomic(args.out, report)
    print(json.dumps(report.get("vs_trainer", {}), indent=2))


def _worker_env(config: str) -> dict[str, str]:
    """The environment a configuration runs in: heedful's allocator for heedful, the system's for the Trainer."""
    from heedful.allocator import INSTALL_HINT, OPT_OUT, PRELOADED, preload_env

    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", OPT_OUT, PRELOADED)}
    extra = config.partition("+")[2]
    if config.startswith("heedful") and extra != "glibc" or extra == "tcmalloc":
        preloaded = preload_env(env)
        if preloaded is None:
            raise SystemExit(f"{config} needs tcmalloc: {INSTALL_HINT}")
        return preloaded
    return env


def _forward(args: argparse.Namespace) -> list[str]:
    return [
        "--model", args.model, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--budget", str(args.budget), "--max-source", str(args.max_source), "--max-target", str(args.max_target),
        "--threads", str(args.threads),
    ]


if __name__ == "__main__":
    main()
