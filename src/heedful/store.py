"""SQLite results store: runs with their full config, and one row per evaluated example.

Two tables keep model work and bookkeeping apart:

* ``outputs`` caches what a model produced for one request, keyed by a content hash of
  (model, prompt, continuations, settings). A re-run, a resumed run, or another run
  that asks the same question reads it instead of recomputing.
* ``records`` holds one row per (run, task, instruction, instance) with the prompt,
  the scored continuations, the prediction and the score.

Every write is its own transaction in WAL mode, so a process killed at any point
leaves only whole rows behind.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    config TEXT NOT NULL,
    environment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    instruction_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    instruction_kind TEXT NOT NULL,
    output_key TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, task, instruction_id, instance_id)
);
"""


def content_hash(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (key order independent)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Store:
    """A results database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs -------------------------------------------------------------------------
    def start_run(self, run_id: str, kind: str, config: Mapping[str, Any], environment: Mapping[str, Any]) -> None:
        """Register a run; an existing run (a resume) keeps its original creation time."""
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO runs (run_id, kind, created, config, environment) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, time.time(), json.dumps(config, sort_keys=True), json.dumps(environment, sort_keys=True)),
            )

    def finish_run(self, run_id: str) -> None:
        with self._db:
            self._db.execute("UPDATE runs SET finished = ? WHERE run_id = ?", (time.time(), run_id))

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT run_id, kind, created, finished, config, environment FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        return {
            "run_id": row[0],
            "kind": row[1],
            "created": row[2],
            "finished": row[3],
            "config": json.loads(row[4]),
            "environment": json.loads(row[5]),
        }

    # model outputs ------------------------------------------------------------------
    def get_outputs(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached outputs for the keys that have one."""
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):  # SQLite's host parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, payload in self._db.execute(f"SELECT key, payload FROM outputs WHERE key IN ({marks})", chunk):
                found[key] = json.loads(payload)
        return found

    def put_outputs(self, outputs: Mapping[str, Mapping[str, Any]]) -> None:
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO outputs (key, payload, created) VALUES (?, ?, ?)",
                [(key, json.dumps(value), now) for key, value in outputs.items()],
            )

    # per-example records ------------------------------------------------------------
    def put_records(self, run_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Save records as dicts (``heedful.evaluate.records.Record.to_dict``); same key replaces."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO records "
                "(run_id, task, instruction_id, instance_id, instruction_kind, output_key, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        rec["task"],
                        rec["instruction_id"],
                        rec["instance_id"],
                        rec["instruction_kind"],
                        rec["output_key"],
                        json.dumps(rec, ensure_ascii=False),
                    )
                    for rec in records
                ],
            )

    def records(self, run_id: str) -> Iterator[dict[str, Any]]:
        """A run's records in a stable order (task, instruction, instance as inserted)."""
        for (payload,) in self._db.execute(
            "SELECT record FROM records WHERE run_id = ? ORDER BY task, instruction_id, rowid", (run_id,)
        ):
            yield json.loads(payload)

    def count_records(self, run_id: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (run_id,)).fetchone()[0]

    # whole stores ----------------------------------------------------------------------
    def merge_from(self, other: str | Path) -> None:
        """Copy every run, output and record of the store at ``other`` into this one (same keys replace).

        Idempotent, so a study that merges a finished unit twice (a crash between merge and
        marker) ends with the same store.
        """
        self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self._db:
                for table in ("runs", "outputs", "records"):
                    self._db.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM other.{table}")  # noqa: S608
        finally:
            self._db.execute("DETACH DATABASE other")

    def run_ids(self, kind: str | None = None) -> list[str]:
        """Every run's id (of ``kind`` only, if given), oldest first."""
        query = "SELECT run_id FROM runs" + (" WHERE kind = ?" if kind else "") + " ORDER BY created, run_id"
        return [row[0] for row in self._db.execute(query, (kind,) if kind else ())]
