"""``heedful metrics``: score a predictions JSONL file with SuperNI's metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from heedful.errors import HeedfulError, where
from heedful.evaluate.metrics import XlingualTokenizer, aggregate, round_scores

REQUIRED_FIELDS = ("task", "id", "prediction", "references")


def _check_record(record: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise HeedfulError(
            f"{where(path, line)}: expected a JSON object, got {type(record).__name__}"
        )
    for name in REQUIRED_FIELDS:
        if name not in record:
            raise HeedfulError(f"{where(path, line)}: missing field '{name}'")
    for name in ("task", "prediction"):
        if not isinstance(record[name], str):
            raise HeedfulError(f"{where(path, line, name)}: expected a string")
    if not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
        raise HeedfulError(f"{where(path, line, 'id')}: expected a string or an integer")
    references = record["references"]
    if (
        not isinstance(references, list)
        or not references
        or not all(isinstance(r, str) for r in references)
    ):
        raise HeedfulError(
            f"{where(path, line, 'references')}: expected a non-empty list of strings"
        )
    category = record.get("category")
    if category is not None and not isinstance(category, str):
        raise HeedfulError(f"{where(path, line, 'category')}: expected a string")
    return record


def read_prediction_records(path: Path) -> list[dict[str, Any]]:
    """Read and validate ``{"task", "id", "prediction", "references", "category"?}`` lines.

    Blank lines are skipped. Raises :class:`HeedfulError` naming the file and line of a
    malformed line, a missing or mistyped field, a duplicate (task, id), or an empty file.
    """
    if not path.exists():
        raise HeedfulError(f"{path}: no such file")
    if not path.is_file():
        raise HeedfulError(f"{path}: not a file")
    records: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    # Without its newline, so an error's column points into this line.
                    record = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as err:
                    raise HeedfulError(
                        f"{path}:{line_no}:{err.colno}: invalid JSON: {err.msg}"
                    ) from None
                record = _check_record(record, path, line_no)
                key = (record["task"], str(record["id"]))
                if key in seen:
                    raise HeedfulError(
                        f"{where(path, line_no)}: duplicate id {key[1]!r} of task {key[0]!r} "
                        f"(first on line {seen[key]})"
                    )
                seen[key] = line_no
                records.append(record)
    except UnicodeDecodeError as err:
        raise HeedfulError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not records:
        raise HeedfulError(f"{path}: no prediction records (empty file)")
    return records


def metrics(
    predictions: Annotated[
        Path,
        typer.Argument(
            help='JSONL, one object {"task", "id", "prediction", "references", "category"?} per line.',
            show_default=False,
        ),
    ],
    xlingual: Annotated[
        bool,
        typer.Option(
            "--xlingual",
            help="Tokenize ROUGE-L with GPT-2 BPE like SuperNI's cross-lingual track "
            "(the default tokenizer ignores non-ASCII text).",
        ),
    ] = False,
    xlingual_tokenizer: Annotated[
        str,
        typer.Option(help="Hub id or local directory of the GPT-2 tokenizer used by --xlingual."),
    ] = "gpt2",
    digits: Annotated[
        int, typer.Option(min=0, help="Decimals of the printed scores (SuperNI rounds to 4).")
    ] = 4,
) -> None:
    """Score predictions with SuperNI's exact match and ROUGE-L, per task, category and overall.

    Prints JSON: {"tasks": {task: {exact_match, rougeL, n}}, "categories": {category:
    {exact_match, rougeL, n, metric}}, "overall": {exact_match, rougeL, n}}. Scores are
    percentages averaged over instances; each instance takes its best reference.
    """
    records = read_prediction_records(predictions)
    tokenizer = None
    if xlingual:
        try:
            tokenizer = XlingualTokenizer(xlingual_tokenizer)
        except (OSError, ValueError) as err:  # missing, offline or not a tokenizer
            first_line = (
                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            )
            raise HeedfulError(
                f"--xlingual-tokenizer {xlingual_tokenizer!r}: cannot load tokenizer ({first_line})"
            ) from None
    # Percent, as Tk-Instruct's compute_metrics prints them (heedful stores fractions).
    results = aggregate(records, tokenizer=tokenizer, percent=True)
    json.dump(round_scores(results, digits), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
