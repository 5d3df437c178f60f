"""Smoke test of benchmarks/bench_scoring.py's helpers on a tiny random model (no timing claims)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "benchmarks" / "bench_scoring.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scoring", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scoring"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def items(bench):
    Item = bench.Item
    return [
        Item("t1", "a", "Question: Is the sky blue?\nAnswer:", (" yes", " no"), 0),
        Item("t1", "b", "Q: The quick brown fox jumps over the lazy dog.\nA: ", ("True", "False", "yes no"), 1),
        Item("t2", "c", "Definition: classify sentences. Input: positive", (" (A)", " (B)", " (C)", " (D)"), 3),
    ]


def test_build_items_follow_runner_rule_and_seed(bench):
    pytest.importorskip("bigbench", reason="BIG-bench data package not installed")
    from heedful.prompts.demos import continuation_strings

    first = bench.build_items(6, seed=3)
    assert first == bench.build_items(6, seed=3)
    assert len(first) == 6 and len({(i.task, i.instance_id) for i in first}) == 6
    for item in first:
        assert 0 <= item.gold < len(item.continuations)
        # The runner's rule, re-derived from the bare choices.
        bare = tuple(c[1:] if not item.context[-1].isspace() else c for c in item.continuations)
        assert item.continuations == continuation_strings(item.context, bare)


def test_robustness_items_are_every_phrasing_over_the_same_instances(bench):
    pytest.importorskip("bigbench", reason="BIG-bench data package not installed")

    items = bench.build_robustness_items(phrasings=3, instances=2, tasks=2, seed=1)
    assert items == bench.build_robustness_items(phrasings=3, instances=2, tasks=2, seed=1)
    assert len(items) == 12 and len({i.task for i in items}) == 2
    for task in {i.task for i in items}:
        mine = [i for i in items if i.task == task]
        by_phrasing: dict[str, list] = {}
        for item in mine:
            by_phrasing.setdefault(item.phrasing, []).append(item)
        assert len(by_phrasing) == 3
        assert len({tuple(i.instance_id for i in group) for group in by_phrasing.values()}) == 1
        assert mine[0].phrasing == "designer"  # the designer's instruction comes first
        assert all(0 <= i.gold < len(i.continuations) for i in mine)


def test_scoring_tokens_count_a_shared_instruction_once(bench, tiny_llama_dir):
    from heedful.models import load_model

    backend = load_model(str(tiny_llama_dir))
    instruction = "In this task, you are given a question and you have to pick the correct option.\n"
    items = [
        bench.Item("t", str(k), instruction + q + "\nA:", (" yes", " no", " the lazy dog"), 0)
        for k, q in enumerate(["Is it true?", "Water boils.", "The quick brown fox"])
    ]
    counts = bench.scoring_tokens(backend, lambda: bench.heedful_logliks(backend, items, batch_size=2))
    before = 0
    for item in items:
        ctx, conts = backend.encoder.encode_request(item.context, item.continuations, item.instance_id)
        before += len(ctx) + sum(len(c) - 1 for c in conts)
    assert counts["heedful_before_sharing"] == before
    assert counts["heedful_after_sharing"] < before - len(instruction) // 4  # the instruction ran once, not thrice


def test_lm_eval_task_scores_exactly_heedfuls_strings(bench, items, tiny_llama_dir, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness not installed")
    import torch

    from heedful.models import load_model

    torch.set_num_threads(1)
    backend = load_model(str(tiny_llama_dir))
    lm = bench.load_lm_eval(str(tiny_llama_dir), "float32", batch_size=4)
    ours = bench.heedful_logliks(backend, items, batch_size=2)
    via_task = bench.simple_evaluate_logliks(lm, items, tmp_path / "task")
    direct = bench.lm_eval_logliks(lm, items)

    assert (tmp_path / "task" / f"{bench.LM_EVAL_TASK}.yaml").is_file()
    rows = [json.loads(line) for line in (tmp_path / "task" / f"{bench.LM_EVAL_TASK}.jsonl").read_text().splitlines()]
    assert [r["continuations"] for r in rows] == [list(i.continuations) for i in items]
    assert bench.compare(direct, via_task)["max_abs_diff"] == 0.0
    result = bench.compare(ours, direct)
    assert result["max_abs_diff"] < 1e-4
    assert result["agreement"] == 1.0 and result["options"] == sum(len(i.continuations) for i in items)


def test_compare_and_regroup(bench, items):
    flat = [float(k) for k in range(9)]
    grouped = bench.regroup(flat, items)
    assert grouped == [[0.0, 1.0], [2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
    with pytest.raises(ValueError):
        bench.regroup(flat[:-1], items)
    shifted = [[x + 0.5 for x in g] for g in grouped]
    shifted[0] = [1.0, 0.0]  # flips item 0's argmax
    result = bench.compare(shifted, grouped)
    assert result["max_abs_diff"] == 1.0 and result["same_prediction"] == 2
    assert bench.accuracy(grouped, items) == pytest.approx(1 / 3)  # argmax is the last option: only item c is right


def test_count_tokens_matches_the_encoder(bench, items, tiny_llama_dir):
    from heedful.models import load_model

    backend = load_model(str(tiny_llama_dir))
    counts = bench.count_tokens(backend.encoder, items)
    unique = per_option = 0
    for item in items:
        for j, cont in enumerate(item.continuations):
            ctx, ids = backend.encoder.encode_pair(item.context, cont)
            per_option += len(ctx) + len(ids) - 1
            unique += len(ids) + (len(ctx) if j == 0 else 0)
    assert counts["unique"] == unique and counts["per_option"] == per_option
    assert counts["unique"] <= counts["lm_eval"] <= counts["per_option"]
    assert counts["options"] == 9


def test_linear_shapes_cover_the_models_linear_layers(bench, tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    shapes = bench.linear_shapes(model.config)
    counted = sum(k * n * c for k, n, c in shapes.values())
    actual = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert counted == actual

    tokens = {"unique": 100, "logit_positions": 10}
    limit = bench.compute_limit(model.config, tokens, torch.float32, rows=64)
    head = shapes["lm_head"][0] * shapes["lm_head"][1]
    assert limit["flops"] == pytest.approx(2 * (100 * (counted - head) + 10 * head))
    assert limit["limit_s"] > 0 and limit["effective_gflops_per_s"] > 0


def test_write_result_keeps_the_other_dtype(bench, tmp_path):
    out = tmp_path / "scoring.json"
    bench.write_result({"config": {"dtype": "float32"}, "x": 1}, out)
    bench.write_result({"config": {"dtype": "bfloat16"}, "x": 2}, out)
    bench.write_result({"config": {"dtype": "float32"}, "x": 3}, out)
    data = json.loads(out.read_text())
    assert data["float32"]["x"] == 3 and data["bfloat16"]["x"] == 2
