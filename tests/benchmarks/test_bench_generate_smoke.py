"""Smoke test of benchmarks/bench_generate.py on a tiny random model (one run, no timing claims)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "benchmarks" / "bench_generate.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_generate", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_help_names_every_option(bench, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "model.generate" in text
    for flag in (
        "--prompts",
        "--runs",
        "--batch-size",
        "--max-new-tokens",
        "--stop",
        "--encoding",
        "--superni",
        "--out",
    ):
        assert flag in text
    assert bench.parse_args([]).stop == ["\n"]


def test_prompts_are_one_seeded_test_instance_per_generation_task(bench, shared_data, causal_tokenizer) -> None:
    from heedful.tasks.superni import load_superni

    kw = dict(superni=shared_data / "superni", tokenizer=causal_tokenizer, max_source_tokens=200)
    prompts = bench.build_prompts(4, seed=1, **kw)
    assert prompts == bench.build_prompts(4, seed=1, **kw)
    assert prompts != bench.build_prompts(4, seed=2, **kw)
    assert len({p.task for p in prompts}) == 4
    for p in prompts:
        [task] = load_superni(shared_data / "superni" / "tasks" / f"{p.task}.json")
        assert task.type.value == "generation"
        assert next(i for i in task.instances if i.id == p.instance_id).split == "test"
        assert len(causal_tokenizer(p.text).input_ids) <= 200


def test_one_tiny_run_writes_identical_answers_and_ratios(bench, shared_data, tiny_llama_dir, tmp_path) -> None:
    out = tmp_path / "generate.json"
    args = [
        "--model", str(tiny_llama_dir), "--prompts", "3", "--runs", "1", "--threads", "1", "--batch-size", "2",
        "--max-new-tokens", "8", "--max-source-tokens", "120", "--stop", "e", "--stop", "\n",
        "--superni", str(shared_data / "superni"), "--out", str(out),
    ]  # fmt: skip
    bench.main(args)
    result = json.loads(out.read_text())["float32"]
    assert result["config"]["prompts"] == 3 and result["config"]["stop"] == ["e", "\n"]
    assert result["environment"]["torch_cpu_capability"]
    for side in bench.SIDES:
        assert len(result["speed"][side]["runs_s"]) == 1 and result["speed"][side]["tokens_per_s"] > 0
    for name, agreement in result["agreement"].items():
        assert agreement["same_text"] == agreement["prompts"] == 3, (name, agreement["differ"])
        assert agreement["same_token_prefix"] == 3
    assert set(result["ratios"]) == {"heedful_vs_generate_stop", "heedful_vs_generate_plain"}
    assert result["target"]["ratio"] == min(result["ratios"].values())
    assert 0 < result["tokens"]["answer"] <= 3 * 8
