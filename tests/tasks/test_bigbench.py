"""The BIG-bench JSON task loader on the installed ``bigbench`` package data."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.tasks import bigbench as bb
from heedful.tasks.bigbench import BBL_SUN14, bbl_tasks, bigbench_root, load_bigbench, load_bigbench_suite
from heedful.tasks.types import BigBenchFormat, TaskType

try:
    ROOT: Path | None = bigbench_root()
except HeedfulError:
    ROOT = None

pytestmark = pytest.mark.skipif(ROOT is None, reason="bigbench package not installed (pip install --no-deps bigbench)")


def _raw(task_json: Path) -> dict:
    return json.loads(task_json.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bbl() -> dict[str, list]:
    return {name: load_bigbench(name, seed=0) for name in bbl_tasks()}


def test_bbl_list_parsed_from_package_matches_fallback():
    source = ROOT.parent / "bbseqio" / "bigbench_lite.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    assign = next(n for n in tree.body if isinstance(n, ast.Assign))
    assert bbl_tasks() == tuple(ast.literal_eval(assign.value)["bigbench_lite_v1"])
    assert bb._BBL_FALLBACK == bbl_tasks()
    assert len(bbl_tasks()) == 24
    assert set(BBL_SUN14) <= set(bbl_tasks()) and len(BBL_SUN14) == 14


def test_all_bbl_tasks_load_with_every_example(bbl):
    for name, tasks in bbl.items():
        top = _raw(ROOT / name / "task.json")
        if "examples" in top:
            assert [t.name for t in tasks] == [name]
            raws = [top]
        else:
            subs = sorted((ROOT / name).glob("*/task.json"))
            raws = [_raw(p) for p in subs]
            assert [t.name for t in tasks] == [f"{top['name']}:{r['name']}" for r in raws]
        for task, raw in zip(tasks, raws):
            distinct = {json.dumps(e) for e in raw["examples"]}
            assert len(task.instances) == len(distinct) > 0
            assert task.metadata["duplicates_removed"] == len(raw["examples"]) - len(distinct)
            assert task.metadata["base_task"] == name
            assert task.definition == raw["description"]
            assert "canary" not in task.metadata
            assert task.source == "bigbench"


def test_options_gold_and_references_follow_target_scores(bbl):
    for tasks in bbl.values():
        for task in tasks:
            raw = _raw(Path(task.metadata["path"]))
            for inst in task.instances:
                ex = raw["examples"][int(inst.id)]
                assert inst.input == ex["input"]
                if "target_scores" not in ex:
                    assert inst.options is None and task.type is TaskType.GENERATION
                    target = ex["target"]
                    assert inst.references == tuple(target if isinstance(target, list) else [target])
                    continue
                file_opts = list(ex["target_scores"])
                assert inst.options == tuple(file_opts[j] for j in inst.option_order)
                scores = list(ex["target_scores"].values())
                best = max(scores)
                last_best = max(i for i, s in enumerate(scores) if s == best)
                assert inst.option_order[inst.gold] == last_best
                if "target" in ex:
                    target = ex["target"]
                    assert inst.references == tuple(target if isinstance(target, list) else [target])
                else:
                    assert inst.references == (inst.gold_text,)


def test_task_types_and_metrics(bbl):
    types = {t.name: t.type for tasks in bbl.values() for t in tasks}
    assert types["hindu_knowledge"] is TaskType.MULTIPLE_CHOICE
    assert types["winowhy"] is TaskType.MULTIPLE_CHOICE
    assert types["auto_debugging"] is TaskType.GENERATION
    assert types["operators"] is TaskType.GENERATION
    for tasks in bbl.values():
        for t in tasks:
            assert t.metric == ("accuracy" if t.type is TaskType.MULTIPLE_CHOICE else "exact_match")


def test_prompt_settings_use_bigbench_defaults(bbl):
    (winowhy,) = bbl["winowhy"]
    raw = _raw(ROOT / "winowhy" / "task.json")
    assert winowhy.bigbench_format == BigBenchFormat(
        task_prefix=raw["task_prefix"],
        example_input_prefix=raw["example_input_prefix"],
        example_output_prefix=raw["example_output_prefix"],
        choice_prefix="\n  choice: ",
        append_choices_to_input=False,
    )
    (hindu,) = bbl["hindu_knowledge"]
    assert hindu.bigbench_format == BigBenchFormat()
    # logic_grid_puzzle writes the string "false"; BIG-bench's `if` reads it as true.
    (grid,) = bbl["logic_grid_puzzle"]
    assert _raw(ROOT / "logic_grid_puzzle" / "task.json")["append_choices_to_input"] == "false"
    assert grid.bigbench_format.append_choices_to_input is True


def test_shuffle_is_seeded_reproducible_and_recorded(bbl):
    (first,) = bbl["hindu_knowledge"]
    (again,) = load_bigbench("hindu_knowledge", seed=0)
    (other,) = load_bigbench("hindu_knowledge", seed=1)
    assert [i.options for i in first.instances] == [i.options for i in again.instances]
    assert [i.option_order for i in first.instances] != [i.option_order for i in other.instances]
    identity = [i for i in first.instances if i.option_order == tuple(range(len(i.options)))]
    assert len(identity) < len(first.instances) / 2  # actually shuffled
    # Different instances get different permutations (a per-instance RNG).
    assert len({i.option_order for i in first.instances}) > 1


def test_shuffle_off_keeps_file_order():
    (task,) = load_bigbench("code_line_description", shuffle_options=False)
    raw = _raw(ROOT / "code_line_description" / "task.json")
    for inst in task.instances:
        ex = raw["examples"][int(inst.id)]
        assert inst.options == tuple(ex["target_scores"])
        assert inst.option_order == tuple(range(len(inst.options)))
        assert ex["target_scores"][inst.gold_text] == 1


def test_subtask_selection_by_folder_or_name():
    by_folder = load_bigbench("logical_deduction:five_objects")
    assert [t.name for t in by_folder] == ["logical_deduction:five_objects"]
    by_name = load_bigbench("bbq_lite_json:bbq_lite_json_age_ambig")
    by_dir = load_bigbench("bbq_lite_json:age_ambig")
    assert [t.name for t in by_name] == [t.name for t in by_dir] == ["bbq_lite_json:bbq_lite_json_age_ambig"]
    sub_raw = _raw(ROOT / "logical_deduction" / "five_objects" / "task.json")
    assert by_folder[0].bigbench_format.task_prefix == sub_raw["task_prefix"]


def test_suites():
    mc = load_bigbench_suite("bbl-mc")
    assert mc and all(t.type is TaskType.MULTIPLE_CHOICE for t in mc)
    mc_bases = {t.metadata["base_task"] for t in mc}
    assert "auto_debugging" not in mc_bases and "winowhy" in mc_bases
    for name in set(bbl_tasks()) - mc_bases:
        assert all(t.type is TaskType.GENERATION for t in load_bigbench(name))


def test_sun14_pools_bbq_lite_into_one_task():
    """Sun et al.'s 14 tasks, bbq_lite_json evaluated as one task of all its subtasks' instances."""
    sun14 = load_bigbench_suite("bbl-sun14", shuffle_options=False)
    names = [t.name for t in sun14]
    assert "bbq_lite_json" in names and not any(n.startswith("bbq_lite_json:") for n in names)
    assert len({t.metadata["base_task"] for t in sun14}) == 14
    [bbq] = [t for t in sun14 if t.name == "bbq_lite_json"]
    subtasks = load_bigbench("bbq_lite_json", shuffle_options=False)
    assert len(bbq.instances) == sum(len(t.instances) for t in subtasks)
    assert len({i.id for i in bbq.instances}) == len(bbq.instances)
    first = subtasks[0]
    assert bbq.instances[0].id == f"{first.name.split(':')[1]}/{first.instances[0].id}"
    assert bbq.instances[0].input == first.instances[0].input


def test_errors(tmp_path):
    with pytest.raises(HeedfulError, match="unknown BIG-bench task 'no_such_task'"):
        load_bigbench("no_such_task")
    with pytest.raises(HeedfulError, match="programmatic"):
        load_bigbench("simple_arithmetic")
    with pytest.raises(HeedfulError, match="has no subtask 'nope'"):
        load_bigbench("logical_deduction:nope")
    with pytest.raises(HeedfulError, match="has no subtasks"):
        load_bigbench("winowhy:x")

    root = tmp_path / "benchmark_tasks"
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "task.json").write_text('{"name": "broken",\n "examples": [1,]}')
    with pytest.raises(HeedfulError, match=r"task.json:2:\d+: malformed JSON"):
        load_bigbench("broken", root=tmp_path)
    (root / "nogold").mkdir()
    (root / "nogold" / "task.json").write_text(
        json.dumps({"name": "nogold", "examples": [{"input": "q", "target_scores": {"a": 0, "b": 0}}]})
    )
    with pytest.raises(HeedfulError, match="example 0: no correct choice"):
        load_bigbench("nogold", root=tmp_path)
    (root / "noinput").mkdir()
    (root / "noinput" / "task.json").write_text(json.dumps({"name": "noinput", "examples": [{"target": "x"}]}))
    with pytest.raises(HeedfulError, match="example 0: missing field 'input'"):
        load_bigbench("noinput", root=tmp_path)


def test_checkout_root(tmp_path):
    checkout = tmp_path / "BIG-bench" / "bigbench" / "benchmark_tasks"
    checkout.mkdir(parents=True)
    shutil.copytree(ROOT / "winowhy", checkout / "winowhy")
    (task,) = load_bigbench("winowhy", root=tmp_path / "BIG-bench")
    (installed,) = load_bigbench("winowhy")
    assert [i.options for i in task.instances] == [i.options for i in installed.instances]
