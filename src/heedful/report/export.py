"""Results as two tidy tables for pandas: every per-example record, and one summary per (unit, task, instruction).

``heedful export`` writes them from the same inputs as ``heedful report`` (run, study
or report folders, :func:`heedful.report.sources.load_inputs`); the records table is
the report's ``data/records.parquet`` (:func:`heedful.report.sources.records_table`).
A summary's ``score`` is the mean of its records' scores (fractions, 0..1) with the
report's 95% percentile-bootstrap CI over instances (:func:`heedful.report.stats.mean_ci`),
so a summary row equals the number a report's figure shows for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heedful.errors import UserError
from heedful.evaluate.records import Record
from heedful.report.sources import ReportUnit, records_table, write_table
from heedful.report.stats import mean_ci

RECORDS = "records"
SUMMARIES = "summaries"


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int


def export_tables(units: list[ReportUnit], out: Path, *, fmt: str = "parquet", n_bootstrap: int = 1000,
                  seed: int = 0) -> list[Written]:
    """Write ``OUT/records.FMT`` and ``OUT/summaries.FMT``, each atomically; a failure leaves earlier files whole."""
    if not any(u.records for u in units):
        raise UserError("no evaluation records in the inputs (only unfinished units, trainings without evaluation "
                        "or representations?)")
    written = []
    for name, table in ((RECORDS, records_table(units)),
                        (SUMMARIES, summaries_table(units, n_bootstrap=n_bootstrap, seed=seed))):
        path = out / f"{name}.{fmt}"
        write_table(table, path, fmt)
        written.append(Written(path, table.num_rows))
    return written


def summaries_table(units: list[ReportUnit], *, n_bootstrap: int, seed: int) -> Any:
    """One row per (unit, task, instruction) evaluated, in the inputs' order, as a pyarrow table."""
    import pyarrow as pa

    rows = []
    for unit in units:
        groups: dict[tuple[str, str], list[Record]] = {}
        for record in unit.records:
            groups.setdefault((record.task, record.instruction_id), []).append(record)
        for (task, instruction), records in groups.items():
            first = records[0]
            score, low, high = mean_ci([r.score for r in records], n_bootstrap=n_bootstrap, seed=seed,
                                       name=f"{unit.id}/{task}/{instruction}")
            rows.append({
                "unit": unit.id, "study": unit.study, "command": unit.command, "model": unit.model,
                "axes": json.dumps(unit.axes, ensure_ascii=False, sort_keys=True), "task": task,
                "category": first.category, "task_type": first.task_type, "instruction_id": instruction,
                "instruction_kind": first.instruction_kind, "instruction_collection": first.instruction_collection,
                "metric": first.metric, "n": len(records), "score": score, "ci_low": low, "ci_high": high,
                "exact_match": _mean(r.exact_match for r in records), "rouge_l": _mean(r.rouge_l for r in records),
            })
    text, number = pa.string(), pa.float64()
    schema = pa.schema([("unit", text), ("study", text), ("command", text), ("model", text), ("axes", text),
                        ("task", text), ("category", text), ("task_type", text), ("instruction_id", text),
                        ("instruction_kind", text), ("instruction_collection", text), ("metric", text),
                        ("n", pa.int64()), ("score", number), ("ci_low", number), ("ci_high", number),
                        ("exact_match", number), ("rouge_l", number)])
    return pa.Table.from_pylist(rows, schema=schema)


def _mean(values: Any) -> float | None:
    """The mean of the values given (generation's exact match, ROUGE-L); None where no record has one."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
