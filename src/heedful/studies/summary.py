"""A finished study in one table: every evaluated unit's score per instruction kind, with 95% CIs.

Rows are per unit and kind, over all tasks (``overall``) and over each task type (``overall
QA``, ``overall BC``, ``overall MC``: Sun et al.'s Table 3 groups) where records carry one.

Recomputed from the stored records (no model runs): for each unit that evaluated
(``eval``, ``robustness``, ``train`` with its final evaluation) the ``overall`` rows of
:func:`heedful.analysis.robustness.robustness_report`, i.e. per instruction kind the mean
over tasks of the phrasings' mean score, and a bootstrap interval stratified by task.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from heedful.analysis.grouping import OVERALL
from heedful.analysis.robustness import summarize_by_kind
from heedful.analysis.runs import load_run
from heedful.evaluate.records import Record
from heedful.io import read_json_object
from heedful.rundir import RunDir
from heedful.studies.executors import study_states
from heedful.studies.spec import Study

EVALUATING = ("eval", "robustness", "train")


def study_summary(study: Study, *, n_bootstrap: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (done unit that evaluated, instruction kind): its overall score and 95% CI."""
    states = study_states(study)
    rows = []
    for unit in study.units:
        if unit.command not in EVALUATING or states[unit.id].status != "done":
            continue
        if unit.command == "train" and not unit.config.eval.enabled:
            continue
        if unit.command == "robustness" and unit.config.from_run:
            continue  # it summarises another unit's records, which have their rows
        records: list[Record] = load_run(unit.folder).records
        for kind in summarize_by_kind(records, n_bootstrap=n_bootstrap, seed=seed):
            if kind.task == OVERALL or kind.task.startswith(f"{OVERALL} "):  # all tasks, and each task type
                rows.append({"unit": unit.id, "command": unit.command, "metric": _metric(records),
                             **{k: None if v != v else v for k, v in dataclasses.asdict(kind).items()}})  # NaN: None
        rows.extend(_baseline_rows(unit.id, unit.command, RunDir(unit.folder).results))
    return rows


def _baseline_rows(unit_id: str, command: str, results: Path) -> list[dict[str, Any]]:
    """The random-guess and majority baselines an evaluation computed (``baselines: true``), as rows."""
    if not results.is_file():
        return []
    overall = (read_json_object(results).get("baselines") or {}).get("overall")
    if not overall:
        return []
    values = {"random guess (expected)": overall.get("uniform_expected"), "random guess (sampled)":
              overall.get("sampled_mean"), "majority": overall.get("majority")}
    return [
        {"unit": unit_id, "command": command, "task": OVERALL, "metric": "exact_match", "kind": name, "mean": value,
         "ci_low": None,
         "ci_high": None, "std": None, "pdr": None, "n_tasks": overall.get("n_tasks"), "n_examples": None}
        for name, value in values.items() if value is not None
    ]


def _metric(records: list[Record]) -> str:
    return "/".join(sorted({r.metric for r in records}))


def summary_markdown(study: Study, rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (percent, one decimal)."""
    variant = f" (variant `{study.variant}`)" if study.variant else ""
    lines = [
        f"Study `{study.name}`{variant}, file `{study.path}`.",
        "",
        "| unit | tasks | kind | metric | n tasks | examples | mean % | 95% CI | std | PDR |",
        "|---|---|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['unit']} | {row['task']} | {row['kind']} | {row['metric']} | {row['n_tasks']} | "
            f"{_text(row['n_examples'])} | "
            f"{100 * row['mean']:.1f} | {interval(row)} | {_text(row['std'], percent=True)} | "
            f"{_text(row['pdr'], signed=True)} |"
        )
    return "\n".join(lines) + "\n"


def interval(row: dict[str, Any]) -> str:
    """A row's 95% CI in percent, or '-' where it has none (a baseline)."""
    if row["ci_low"] is None or row["ci_high"] is None:
        return "-"
    return f"{100 * row['ci_low']:.1f}–{100 * row['ci_high']:.1f}"


def _text(value: Any, *, percent: bool = False, signed: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:.1f}"
    return f"{value:+.2f}" if signed else str(value)
