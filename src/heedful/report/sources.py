"""What a report draws from: the units of studies, single run folders, or an earlier report's data.

Every input becomes a list of :class:`ReportUnit`: one finished (or failed) unit of work
with its resolved config, the per-example records of its final evaluation, and what else
it wrote (results, representation distances and vectors). Nothing here runs a model.

Three inputs are read:

* a study folder (``study.json``, written by ``heedful study run``): every planned unit;
* a run folder of ``heedful eval``, ``robustness``, ``train`` or ``representations``;
* a report folder (``data/units.json`` beside ``data/records.parquet``): the data an
  earlier ``heedful report`` exported, so that a committed report can be redrawn from
  what is committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heedful.analysis.runs import load_run
from heedful.errors import HeedfulError, UserError
from heedful.evaluate.records import Record
from heedful.io import read_json_object
from heedful.rundir import RunDir

EXPORT_UNITS = "data/units.json"
EXPORT_RECORDS = "data/records.parquet"
VECTOR_LABELS = ("task", "instruction_id", "kind", "instance_id")


@dataclass
class ReportUnit:
    """One unit of work as a report sees it."""

    id: str
    """The study's unit id (``name[axis=value,...]``), or the run folder's name."""
    command: str
    """The heedful command that made it: eval, robustness, train, representations, paraphrase."""
    config: dict[str, Any]
    """The command's resolved config."""
    folder: str = ""
    status: str = "done"
    error: str | None = None
    axes: dict[str, Any] = field(default_factory=dict)
    """The study grid's values for this unit (empty for a single run)."""
    study: str = ""
    """The study (name and file) the unit belongs to."""
    records: list[Record] = field(default_factory=list)
    """The final evaluation's per-example records (empty where the unit did not evaluate)."""
    run_ids: list[str] = field(default_factory=list)
    baselines: dict[str, Any] | None = None
    """The random-guess and majority baselines of ``eval --baselines`` (per task and overall)."""
    environment: dict[str, Any] = field(default_factory=dict)
    """Versions, platform and seeds the unit ran with."""
    distances: list[dict[str, Any]] = field(default_factory=list)
    """``representations``: each instruction's distance to the nearest reference instruction."""
    vectors: dict[str, np.ndarray] | None = None
    """``representations``: first-decoded-token vectors and their labels (task, instruction_id, kind, instance_id)."""
    embedding: list[dict[str, Any]] | None = None
    """``representations``: the t-SNE of the vectors, one row per point (a report exports this, not the vectors)."""
    wall_s: float | None = None
    audit: dict[str, Any] | None = None
    """``audit``: its measures, search and verdict (``audit.json``)."""

    @property
    def model(self) -> str:
        return str((self.config.get("model") or {}).get("name", ""))

    def meta(self) -> dict[str, Any]:
        """Everything but records and vectors, as JSON (what ``data/units.json`` holds)."""
        return {k: getattr(self, k) for k in ("id", "command", "config", "folder", "status", "error", "axes", "study",
                                               "run_ids", "baselines", "environment", "distances", "wall_s", "audit",
                                               "embedding")}


def load_inputs(paths: list[Path]) -> list[ReportUnit]:
    """The units of every input path, in the order given (a study's in its plan's order)."""
    if not paths:
        raise UserError("give at least one study folder, run folder or report folder")
    units: list[ReportUnit] = []
    for path in paths:
        if (path / EXPORT_UNITS).is_file():
            units.extend(load_export(path))
        elif RunDir(path).study_plan.is_file():
            units.extend(load_study_folder(path))
        elif path.is_dir():
            units.append(load_run_folder(path, unit_id=path.name))
        else:
            raise UserError(f"{path}: no such folder (give a study folder, a run folder or a report folder)")
    seen: set[str] = set()
    for unit in units:
        if unit.id in seen:
            raise UserError(f"unit '{unit.id}' is given twice: name each run folder once")
        seen.add(unit.id)
    return units


def load_study_folder(path: Path) -> list[ReportUnit]:
    """Every unit of the study at ``path`` (done, failed or still pending)."""
    plan = read_json_object(RunDir(path).study_plan)
    study = f"{plan.get('study')} ({plan.get('file')}" + (f", variant {plan['variant']})" if plan.get("variant") else ")")
    units = []
    for index, entry in enumerate(plan.get("units", [])):
        missing = [k for k in ("id", "command", "config", "folder") if k not in entry]
        if missing:
            raise UserError(f"{RunDir(path).study_plan}: unit {index} lacks {', '.join(missing)}")
        folder = Path(entry["folder"])
        if not folder.is_absolute() or not folder.exists():
            folder = path / "units" / folder.name  # the study folder was moved
        marker = RunDir(folder).study_unit
        state = read_json_object(marker) if marker.is_file() else {"status": "pending"}
        unit = ReportUnit(id=entry["id"], command=entry["command"], config=entry["config"], folder=str(folder),
                          status=state.get("status", "pending"), error=state.get("error"), axes=entry.get("axes") or {},
                          study=study, wall_s=state.get("wall_s"))
        if unit.status == "done":
            _read_outputs(unit, folder)
        units.append(unit)
    return units


def load_run_folder(path: Path, *, unit_id: str) -> ReportUnit:
    """A single run folder as one unit."""
    run = RunDir(path)
    for command, marker in (("audit", run.audit), ("representations", run.representations), ("train", run.train_config),
                            ("robustness", run.robustness), ("eval", run.results)):
        if marker.is_file():
            break
    else:
        raise UserError(f"{path}: not a heedful run folder (no results.json, robustness.json, train_config.json "
                        "or representations.json)")
    config = read_json_object(marker).get("config") or {}
    unit = ReportUnit(id=unit_id, command=command, config=config, folder=str(path))
    _read_outputs(unit, path)
    return unit


def _read_outputs(unit: ReportUnit, folder: Path) -> None:
    run = RunDir(folder)
    if unit.command == "representations":
        data = read_json_object(run.representations)
        unit.distances = data.get("instructions", [])
        unit.environment = {**data.get("environment", {}), "seeds": data.get("seeds")}
        if run.vectors.is_file():
            with np.load(run.vectors, allow_pickle=False) as npz:
                unit.vectors = {name: npz[name] for name in ("vectors", *VECTOR_LABELS)}
        return
    if unit.command == "train" and not (unit.config.get("eval") or {}).get("enabled", True):
        unit.environment = read_json_object(run.train_config).get("environment", {}) if run.train_config.is_file() else {}
        return
    if unit.command == "audit":
        unit.audit = read_json_object(run.audit)
    if unit.command not in ("eval", "robustness", "train", "audit"):
        return
    if unit.command == "robustness" and unit.config.get("from_run"):
        return  # it summarised another unit's records, which that unit brings
    try:
        finished = load_run(folder)
    except HeedfulError as err:
        raise UserError(f"unit '{unit.id}': {err}") from None
    unit.records = finished.records
    unit.run_ids = list(finished.run_ids)
    results = read_json_object(run.results) if run.results.is_file() else {}
    unit.baselines = results.get("baselines")
    source = results or (read_json_object(run.train_config) if run.train_config.is_file() else {})
    unit.environment = {**source.get("environment", {}), "seeds": source.get("seeds")}


# the exported data of a report -------------------------------------------------------------

TABLE_FORMATS: tuple[str, ...] = ("parquet", "csv")


def export_units(units: list[ReportUnit], out: Path) -> None:
    """``OUT/data``: units.json, every record as Parquet (:func:`records_table`).

    Representation vectors stay in their run folders (576 floats a prompt: 13 MB for the
    sun-alignment study); a unit's t-SNE coordinates travel in units.json instead.
    """
    from heedful.io import write_json_atomic

    (out / "data").mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / EXPORT_UNITS, [u.meta() for u in units])
    write_table(records_table(units), out / EXPORT_RECORDS)


def records_table(units: list[ReportUnit]) -> Any:
    """Every record of ``units``, one row each: flat columns (its unit and model first) plus the record as JSON.

    A pyarrow table (``heedful report``'s ``data/records.parquet`` and ``heedful export``'s records).
    """
    import pyarrow as pa

    rows = [
        {"unit": u.id, "model": u.model, "task": r.task, "category": r.category, "task_type": r.task_type,
         "instruction_id": r.instruction_id, "instruction_kind": r.instruction_kind,
         "instruction_collection": r.instruction_collection, "instance_id": r.instance_id, "metric": r.metric,
         "score": r.score, "exact_match": r.exact_match, "rouge_l": r.rouge_l, "prediction": r.prediction,
         "record": json.dumps(r.to_dict(), ensure_ascii=False)}
        for u in units for r in u.records
    ]
    return pa.Table.from_pylist(rows, schema=_RECORD_SCHEMA(pa))


def _RECORD_SCHEMA(pa: Any) -> Any:  # noqa: N802 - a schema built lazily (pyarrow loads on use)
    text, number = pa.string(), pa.float64()
    return pa.schema([("unit", text), ("model", text), ("task", text), ("category", text), ("task_type", text),
                      ("instruction_id", text), ("instruction_kind", text), ("instruction_collection", text),
                      ("instance_id", text), ("metric", text), ("score", number), ("exact_match", number),
                      ("rouge_l", number), ("prediction", text), ("record", text)])


def write_table(table: Any, path: Path, fmt: str = "parquet") -> None:
    """Write a pyarrow ``table`` to ``path`` as Parquet (zstd) or CSV, atomically (a temporary file, then a rename).

    CSV keeps null and empty text apart: a null is an empty field, empty text is ``""``.
    """
    import pyarrow.parquet as pq
    from pyarrow import csv

    if fmt not in TABLE_FORMATS:
        raise UserError(f"unknown table format '{fmt}'; expected one of {', '.join(TABLE_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            csv.write_csv(table, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_export(path: Path) -> list[ReportUnit]:
    """The units an earlier report exported to ``path/data``."""
    import pyarrow.parquet as pq

    units_file = path / EXPORT_UNITS
    try:
        units = [ReportUnit(**meta) for meta in json.loads(units_file.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as err:  # not JSON, or a unit with fields this version does not know
        raise UserError(f"{units_file}: not a heedful report's units ({' '.join(str(err).split())})") from None
    by_id = {u.id: u for u in units}
    records_file = path / EXPORT_RECORDS
    if records_file.is_file():
        table = pq.read_table(records_file, columns=["unit", "record"])
        for row, (unit_id, text) in enumerate(zip(table.column("unit").to_pylist(), table.column("record").to_pylist(),
                                                  strict=True)):
            if unit_id not in by_id:
                raise UserError(f"{records_file}: row {row} names unit '{unit_id}', which {path / EXPORT_UNITS} lacks")
            by_id[unit_id].records.append(Record.from_dict(json.loads(text), where=f"{records_file}: row {row}"))
    return units
