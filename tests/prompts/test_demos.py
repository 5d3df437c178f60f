"""k-shot demonstrations: disjoint from the evaluated instances, seeded, rendered in front."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest

from heedful.errors import HeedfulError
from heedful.prompts.collection import load_collection
from heedful.prompts.demos import (
    demonstration_pool,
    demonstrations_for,
    render_with_demonstrations,
    sample_demonstrations,
)
from heedful.prompts.instruction import Instruction, OptionsSpec
from heedful.prompts.render import render_instruction
from heedful.tasks.types import Instance, Task, TaskType
from shared_data import SHARED_DATA

SHARED = SHARED_DATA


def _task(n_test: int = 30, n_val: int = 5, n_train: int = 40) -> Task:
    instances = []
    for split, n in (("test", n_test), ("val", n_val), ("train", n_train)):
        for i in range(n):
            instances.append(Instance(id=f"{split}{i}", input=f"q {split} {i}", references=("b",),
                                      options=("a", "b"), gold=1, split=split))
    return Task(name="toy", type=TaskType.MULTIPLE_CHOICE, instances=instances)


def test_demonstrations_come_from_train_and_never_from_evaluated_instances():
    task = _task()
    evaluated = {inst.id for inst in task.split("test")}
    demos = sample_demonstrations(task, 5, seed=0, exclude_ids=evaluated)
    assert len(demos) == 5 and len({d.id for d in demos}) == 5
    assert all(d.split == "train" for d in demos)
    assert not {d.id for d in demos} & evaluated


def test_with_every_instance_evaluated_each_draws_from_the_others():
    """A BIG-bench task evaluated whole (no --data.limit) still gets one-shot prompts: leave one out."""
    only_test = _task(n_test=6, n_val=0, n_train=0)
    everything = only_test.split("test")
    demos = demonstrations_for(only_test, everything, 2, seed=0)
    assert set(demos) == {inst.id for inst in everything}
    for inst_id, chosen in demos.items():
        assert len(chosen) == 2 and inst_id not in {d.id for d in chosen}
    assert demonstrations_for(only_test, everything, 2, seed=0) == demos  # seeded
    # with instances left over, the evaluated ones are never demonstrations (as before)
    some = everything[:3]
    assert not {d.id for ds in demonstrations_for(only_test, some, 2, seed=0).values() for d in ds} & {i.id for i in some}


def test_pool_falls_back_to_val_then_unevaluated_instances():
    small_train = _task(n_train=2)
    evaluated = {f"test{i}" for i in range(20)}
    assert {d.split for d in demonstration_pool(small_train, evaluated, 2)} == {"train"}
    assert {d.split for d in demonstration_pool(small_train, evaluated, 6)} == {"train", "val"}
    rest = demonstration_pool(small_train, evaluated, 10)
    assert len(rest) == 17 and not {d.id for d in rest} & evaluated
    # BIG-bench-like task: only test instances, the evaluated sample excluded.
    only_test = _task(n_val=0, n_train=0)
    demos = sample_demonstrations(only_test, 3, seed=1, exclude_ids=evaluated)
    assert {d.id for d in demos} <= {f"test{i}" for i in range(20, 30)}


def test_named_pool_split_and_too_small_pool():
    task = _task()
    demos = sample_demonstrations(task, 4, seed=0, exclude_ids=set(), pool_split="val")
    assert {d.split for d in demos} == {"val"}
    with pytest.raises(HeedfulError, match=r"6 demonstrations asked for but split 'val' has only 5"):
        sample_demonstrations(task, 6, seed=0, exclude_ids=set(), pool_split="val")
    everything = {inst.id for inst in task.instances}
    with pytest.raises(HeedfulError, match=r"has only 2 instances outside the 73 evaluated"):
        sample_demonstrations(task, 3, seed=0, exclude_ids=everything - {"train0", "train1"})
    assert sample_demonstrations(task, 0, seed=0, exclude_ids=set()) == []


def test_same_seed_same_demonstrations_other_seeds_differ():
    task = _task()
    evaluated = {inst.id for inst in task.split("test")}
    first = [d.id for d in sample_demonstrations(task, 3, seed=7, exclude_ids=evaluated)]
    assert first == [d.id for d in sample_demonstrations(task, 3, seed=7, exclude_ids=evaluated)]
    draws = {tuple(d.id for d in sample_demonstrations(task, 3, seed=s, exclude_ids=evaluated)) for s in range(10)}
    assert len(draws) >= 8  # 40 train instances: C(40,3) orderings, collisions are rare


def _instruction(**kw) -> Instruction:
    return Instruction(id="T/1", template="Pick one.\n{input}{options}\nAnswer:", kind="unobserved",
                       collection="test", options=OptionsSpec(field="options", item="\n({letter}) {text}"),
                       answer="letter", **kw)


def test_each_demo_is_rendered_with_the_instruction_and_its_answer():
    task = _task()
    query, demos = task.split("test")[0], task.split("train")[:2]
    out = render_with_demonstrations(_instruction(), task, query, demos)
    block = "Pick one.\nq train {i}\n(A) a\n(B) b\nAnswer: B"
    assert out.prompt == "\n\n".join([block.format(i=0), block.format(i=1), render_instruction(_instruction(), task, query).prompt])
    zero_shot = render_instruction(_instruction(), task, query)
    assert (out.references, out.choices, out.gold, out.instance_id) == (
        zero_shot.references, zero_shot.choices, zero_shot.gold, zero_shot.instance_id)


def test_answer_follows_a_trailing_space_directly_and_custom_separator():
    task = _task()
    spaced = replace(_instruction(), template="{input}{options}\nAnswer: ")
    out = render_with_demonstrations(spaced, task, task.split("test")[0], task.split("train")[:1], separator="\n###\n")
    assert out.prompt.startswith("q train 0\n(A) a\n(B) b\nAnswer: B\n###\nq test 0")


def test_query_cannot_be_its_own_demonstration():
    task = _task()
    query = task.split("train")[0]
    with pytest.raises(HeedfulError, match="its own demonstration"):
        render_with_demonstrations(_instruction(), task, query, [query])


def test_one_shot_on_real_bigbench_data():
    if importlib.util.find_spec("bigbench") is None:
        pytest.skip("BIG-bench data missing: pip install --no-deps bigbench==1.0.0")
    path = SHARED / "instructions" / "bbl.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    from heedful.tasks.bigbench import load_bigbench

    [task] = load_bigbench("hindu_knowledge")
    [record] = [i for i in load_collection(path) if i.task == "hindu_knowledge" and i.id == "NIV2/QA/1"]
    evaluated = task.instances[:100]
    ids = {inst.id for inst in evaluated}
    for query in evaluated[:10]:
        [demo] = sample_demonstrations(task, 1, seed=int(query.id), exclude_ids=ids)
        assert demo.id not in ids
        out = render_with_demonstrations(record, task, query, [demo])
        shown = render_instruction(record, task, demo)
        # The demo's prompt ends "(D) ... " so its letter follows without another space.
        assert out.prompt == shown.prompt + shown.references[0] + "\n\n" + render_instruction(record, task, query).prompt
