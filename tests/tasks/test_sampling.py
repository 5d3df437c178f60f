"""Instance selection by split and sample budget, on a real SuperNI task."""

from __future__ import annotations

import pytest

from heedful.errors import HeedfulError
from heedful.tasks.sampling import parse_budget, select_instances
from heedful.tasks.superni import load_superni
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "superni"
# 546 instances: 100 test, 10 val, 436 train.
TASK_FILE = DATA / "tasks" / "task1155_bard_analogical_reasoning_trash_or_treasure.json"

pytestmark = pytest.mark.skipif(not TASK_FILE.is_file(), reason=f"SuperNI reference data not found at {DATA}")


@pytest.fixture(scope="module")
def task():
    return load_superni(TASK_FILE)[0]


def test_whole_split(task):
    assert len(task.instances) == 546
    assert select_instances(task) == task.instances[:100]
    assert select_instances(task, "val", "all") == task.instances[100:110]
    assert select_instances(task, "train", None) == task.instances[110:]


def test_count_budget_takes_the_first_n(task):
    assert select_instances(task, "train", 10) == task.instances[110:120]
    assert select_instances(task, "train", "200") == task.instances[110:310]
    assert select_instances(task, "val", 1000) == task.instances[100:110]


def test_seeded_count_is_random_reproducible_and_in_file_order(task):
    a = select_instances(task, "train", 50, seed=1)
    assert a == select_instances(task, "train", 50, seed=1)
    assert a != select_instances(task, "train", 50, seed=2)
    assert a != task.instances[110:160]
    positions = [task.instances.index(inst) for inst in a]
    assert positions == sorted(positions) and len(set(positions)) == 50
    assert all(inst.split == "train" for inst in a)


def test_fraction_budget_rounds_half_up_and_keeps_one(task):
    assert len(select_instances(task, "train", 0.5)) == 218  # 436 / 2
    assert len(select_instances(task, "train", 0.25)) == 109  # 436 / 4
    assert len(select_instances(task, "test", 0.125)) == 13  # 12.5 rounds up
    assert len(select_instances(task, "val", 0.01)) == 1  # 0.1 -> at least one
    assert select_instances(task, "test", 1.0) == task.instances[:100]
    assert select_instances(task, "test", "10%") == task.instances[:10]


def test_parse_budget():
    assert parse_budget("all") is None
    assert parse_budget(" ALL ") is None
    assert parse_budget("100") == 100 and isinstance(parse_budget("100"), int)
    assert parse_budget("0.5") == 0.5
    assert parse_budget("1.0") == 1.0 and isinstance(parse_budget("1.0"), float)
    assert parse_budget("25%") == 0.25


@pytest.mark.parametrize("text", ["", "many", "0", "-3", "1.5", "0.0", "nan", "150%"])
def test_parse_budget_rejects(text):
    with pytest.raises(HeedfulError, match="budget"):
        parse_budget(text)


def test_bad_split_and_budget(task):
    with pytest.raises(HeedfulError, match="unknown split 'dev'; expected one of test, val, train"):
        select_instances(task, "dev")
    for bad in (0, -1, 2.5, 0.0, True):
        with pytest.raises(HeedfulError, match="budget"):
            select_instances(task, "test", bad)
