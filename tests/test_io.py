import json

import pytest

from heedful.io import write_json_atomic, write_jsonl_atomic, write_text_atomic


def test_atomic_writes(tmp_path):
    write_json_atomic(tmp_path / "a" / "r.json", {"x": 1})
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == {"x": 1}
    write_jsonl_atomic(tmp_path / "r.jsonl", [{"a": 1}, {"b": "é"}])
    assert [json.loads(l) for l in (tmp_path / "r.jsonl").read_text().splitlines()] == [{"a": 1}, {"b": "é"}]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "r.json"
    write_text_atomic(target, "old")

    def rows():
        yield {"a": 1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(target, rows())
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    from heedful.io import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
