import sqlite3

from heedful.store import Store, content_hash


def test_content_hash_is_stable_and_order_independent():
    assert content_hash({"a": 1, "b": 2}, "x") == content_hash({"b": 2, "a": 1}, "x")
    assert content_hash("prompt", ["A"]) != content_hash("prompt", [" A"])


def test_outputs_and_records_round_trip(tmp_path):
    path = tmp_path / "h.sqlite"
    with Store(path) as store:
        store.start_run("r1", "eval", {"model": "m"}, {"python": "3"})
        store.put_outputs({"k1": {"logliks": [-1.0, -2.0]}})
        assert store.get_outputs(["k1", "missing"]) == {"k1": {"logliks": [-1.0, -2.0]}}
        rec = {"task": "t", "instruction_id": "i", "instance_id": "0", "instruction_kind": "designer", "output_key": "k1", "score": 1.0}
        store.put_records("r1", [rec])
        store.put_records("r1", [rec])  # idempotent: same key replaces
        assert store.count_records("r1") == 1
        assert list(store.records("r1")) == [rec]
        store.finish_run("r1")
        assert store.run("r1")["finished"] is not None
    # A resumed run keeps its original row (created time and config).
    with Store(path) as store:
        created = store.run("r1")["created"]
        store.start_run("r1", "eval", {"model": "other"}, {})
        assert store.run("r1")["created"] == created
        assert store.run("r1")["config"] == {"model": "m"}


def test_many_keys_lookup_beyond_sqlite_parameter_limit(tmp_path):
    with Store(tmp_path / "h.sqlite") as store:
        store.put_outputs({f"k{i}": {"i": i} for i in range(1500)})
        found = store.get_outputs([f"k{i}" for i in range(1500)])
        assert len(found) == 1500 and found["k1499"] == {"i": 1499}


def test_store_uses_wal_so_killed_writers_leave_whole_rows(tmp_path):
    Store(tmp_path / "h.sqlite").close()
    mode = sqlite3.connect(tmp_path / "h.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
