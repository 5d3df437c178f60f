"""Compare finished runs: exact match and ROUGE-L per task and category (Gupta 2023's tables).

A *run* is a folder written by ``heedful train`` (``train_config.json``; its final
evaluations are named by each unit's ``unit.json``) or by ``heedful eval`` /
``heedful robustness`` (``results.json``). The records of those evaluations are read
back from the run's store and rescored with SuperNI's metrics
(:func:`heedful.evaluate.metrics.aggregate`, as Tk-Instruct's ``compute_metrics``),
separately for each instruction a run was evaluated under. Scores are fractions (0..1);
:func:`comparison_table` shows them in percent. Evaluations made during
training (``eval-step-N/``) are not final and are left out.

Nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.evaluate.metrics import aggregate
from heedful.evaluate.records import Record
from heedful.io import read_json_object
from heedful.rundir import RunDir
from heedful.store import Store

GROUPINGS: tuple[str, ...] = ("task", "category")
METRICS: tuple[str, ...] = ("exact_match", "rougeL")


@dataclass(frozen=True)
class RunRecords:
    """The final evaluation records of one run and what produced them."""

    path: Path
    kind: str  # "train" or "eval"
    config: dict[str, Any]
    records: list[Record]
    run_ids: tuple[str, ...] = ()
    """The store's run ids of the final evaluation(s) the records come from."""

    def describe(self) -> dict[str, Any]:
        """The settings a sample-efficiency table is read by (train runs; eval runs are untuned)."""
        c = self.config
        prompts = (c.get("prompts") or {}).get("instructions")
        if self.kind == "train":
            data = c.get("data") or {}
            return {
                "setting": data.get("setting"),
                "budget": data.get("budget"),
                "method": (c.get("method") or {}).get("name"),
                "prompts": prompts,
                "kl_weight": (c.get("loop") or {}).get("kl_weight", 0.0),
            }
        return {"setting": "untuned", "budget": "0", "method": "", "prompts": prompts, "kl_weight": 0.0}


def _records_from_store(store_path: Path, run_ids: Sequence[str]) -> list[Record]:
    if not store_path.is_file():
        raise HeedfulError(f"{store_path}: no results store (is the run finished?)")
    records: list[Record] = []
    with Store(store_path) as store:
        for run_id in run_ids:
            found = [
                Record.from_dict(data, where=f"{store_path}: evaluation {run_id}, record {index}")
                for index, data in enumerate(store.records(run_id))
            ]
            if not found:
                raise HeedfulError(f"{store_path}: no records of evaluation {run_id}")
            records.extend(found)
    return records


def load_run(path: str | Path) -> RunRecords:
    """Read the final evaluation records of a ``heedful train`` or ``heedful eval`` folder."""
    folder = Path(path)
    run = RunDir(folder)
    train_config = run.train_config
    if train_config.is_file():
        provenance = read_json_object(train_config)
        units = sorted(folder.glob(run.unit.name)) + sorted(folder.glob(f"*/{run.unit.name}"))
        if not units:
            raise HeedfulError(f"{folder}: training not finished (no unit.json)")
        run_ids = [read_json_object(u).get("eval_run_id") for u in units]
        if not all(run_ids):
            raise HeedfulError(f"{folder}: trained without evaluation (--eval.enabled false); nothing to compare")
        return RunRecords(folder, "train", provenance.get("config", {}), _records_from_store(run.store, run_ids),
                          tuple(run_ids))
    results = run.results
    if results.is_file():
        data = read_json_object(results)
        if "run_id" not in data:
            raise HeedfulError(f"{results}: missing field 'run_id'")
        return RunRecords(folder, "eval", data.get("config", {}), _records_from_store(run.store, [data["run_id"]]),
                          (data["run_id"],))
    raise HeedfulError(f"{folder}: not a heedful run folder (no train_config.json or results.json)")


def score_rows(runs: Iterable[RunRecords], *, root: Path | None = None) -> list[dict[str, Any]]:
    """One row per (run, instruction evaluated): its settings and SuperNI metrics.

    Each row has ``run`` (the folder, relative to ``root`` when given), the settings of
    :meth:`RunRecords.describe`, ``instruction``, and ``tasks`` / ``categories`` /
    ``overall`` as :func:`~heedful.evaluate.metrics.aggregate` returns them (fractions, 0..1).
    """
    rows = []
    for run in runs:
        by_instruction: dict[str, list[Record]] = {}
        for record in run.records:
            by_instruction.setdefault(record.instruction_id, []).append(record)
        name = str(run.path.relative_to(root)) if root is not None and run.path.is_relative_to(root) else str(run.path)
        for instruction, records in by_instruction.items():
            scored = aggregate(
                {"task": r.task, "category": r.category, "prediction": r.prediction,
                 "references": list(r.references or [""])}
                for r in records
            )
            rows.append({"run": name, **run.describe(), "instruction": instruction, **scored})
    return rows


def sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """Untuned first, then by setting, prompts, method, λ and budget (numeric budgets in order)."""
    budget = str(row.get("budget"))
    numeric = float(budget) if budget.replace(".", "", 1).isdigit() else float("inf")
    return (row["setting"] != "untuned", str(row["setting"]), str(row["prompts"]), str(row["method"]),
            row["kl_weight"], numeric, row["run"], row["instruction"])


def comparison_table(rows: Sequence[dict[str, Any]], *, by: str = "task", metric: str = "exact_match") -> Any:
    """A rich table: one line per row, one column per task (or category) and the overall mean.

    Rows hold fractions (0..1); the table shows them in percent.
    """
    from rich.table import Table

    if by not in GROUPINGS:
        raise HeedfulError(f"unknown grouping '{by}'; expected one of {', '.join(GROUPINGS)}")
    if metric not in METRICS:
        raise HeedfulError(f"unknown metric '{metric}'; expected one of {', '.join(METRICS)}")
    section = "tasks" if by == "task" else "categories"
    groups = sorted({g for row in rows for g in row[section]})
    # one instruction per run (the usual train run): the prompts column already names it
    show_instruction = len({(row["run"], row["instruction"]) for row in rows}) > len({row["run"] for row in rows})
    settings = ["run", "setting", "method", "budget", "prompts"] + (["instruction"] if show_instruction else [])
    table = Table(title=f"{metric} (%) per {by}")
    for column in settings:
        table.add_column(column)
    for group in groups:
        table.add_column(group, justify="right")
    table.add_column("overall", justify="right")
    for row in sorted(rows, key=sort_key):
        cells = [f"{100 * row[section][g][metric]:.1f}" if g in row[section] else "" for g in groups]
        table.add_row(*(str(row[c]) for c in settings), *cells, f"{100 * row['overall'][metric]:.1f}")
    return table
