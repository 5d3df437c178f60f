"""The MMLU loader on the real test split and on broken CSVs."""

from __future__ import annotations

import csv

import pytest

from heedful.errors import HeedfulError
from heedful.tasks.mmlu import load_mmlu
from heedful.tasks.types import TaskType
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "mmlu" / "test"

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"MMLU reference data not found at {DATA}")


@needs_data
def test_real_test_split_loads_every_row():
    tasks = load_mmlu(DATA)
    files = sorted(DATA.glob("*_test.csv"))
    assert [t.name for t in tasks] == [f"mmlu_{p.name[: -len('_test.csv')]}" for p in files]
    total = 0
    for task, file in zip(tasks, files):
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        total += len(rows)
        assert len(task.instances) == len(rows)
        assert task.type is TaskType.MULTIPLE_CHOICE and task.metric == "accuracy"
        assert task.category == task.metadata["subject"] and task.metadata["base_task"] == "mmlu"
        for inst, row in zip(task.instances, rows):
            assert inst.input == row[0]
            assert inst.options == tuple(row[1:5])
            assert inst.gold == "ABCD".index(row[5])
            assert inst.references == (row[1 + inst.gold],)
            assert inst.split == "test" and inst.option_order is None
    assert total == 14042  # data/README.md


@needs_data
def test_quoted_commas_survive():
    (task,) = load_mmlu(DATA / "abstract_algebra_test.csv")
    third = task.instances[2]
    assert third.options == ("0", "1", "0,1", "0,4")
    assert third.gold_text == "0,4"


def test_dev_rows_become_train_split(tmp_path):
    test_dir, dev_dir = tmp_path / "test", tmp_path / "dev"
    test_dir.mkdir()
    dev_dir.mkdir()
    (test_dir / "toy_test.csv").write_text('"q1, with comma",a,b,c,d,A\n"multi\nline q",a,b,c,d,D\n')
    (dev_dir / "toy_dev.csv").write_text("d1,w,x,y,z,C\n")
    (dev_dir / "other_dev.csv").write_text("d2,w,x,y,z,C\n")
    (task,) = load_mmlu(test_dir, dev_dir)
    assert [i.split for i in task.instances] == ["test", "test", "train"]
    assert task.split("test")[1].input == "multi\nline q" and task.split("test")[1].gold == 3
    (demo,) = task.split("train")
    assert demo.id == "dev-0" and demo.gold_text == "y"


def test_bad_rows_name_file_and_line(tmp_path):
    bad = tmp_path / "bad_test.csv"
    bad.write_text('q,a,b,c,d,A\n"multi\nline",a,b,c,d,E\n')
    with pytest.raises(HeedfulError, match=r"bad_test.csv:2: answer must be one of A, B, C, D"):
        load_mmlu(bad)
    bad.write_text("q,a,b,c,d,AB\n")
    with pytest.raises(HeedfulError, match=r"bad_test.csv:1: answer must be one of"):
        load_mmlu(bad)
    bad.write_text("q,a,b,c,d,A\nq,a,b,A\n")
    with pytest.raises(HeedfulError, match=r"bad_test.csv:2: expected 6 columns"):
        load_mmlu(bad)
    bad.write_text("")
    with pytest.raises(HeedfulError, match="no rows"):
        load_mmlu(bad)
    with pytest.raises(HeedfulError, match="no such MMLU"):
        load_mmlu(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HeedfulError, match="no MMLU .csv files"):
        load_mmlu(empty)
