"""``heedful report``: every figure the inputs support, their data, and the page, written in one move.

The report is built in a temporary folder beside ``out`` and moved into place at the
end, so a crash leaves either the previous report or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from heedful.errors import UserError
from heedful.progress import progress_bar
from heedful.provenance import package_versions
from heedful.report.page import render_page
from heedful.report.sections import BUILDERS, Section, Settings
from heedful.report.sources import ReportUnit, export_units


@dataclass(frozen=True)
class ReportResult:
    out: Path
    figures: list[str]
    """The names of the figures drawn (PNG)."""
    tables: list[str]
    """The names of the table-only items."""


def build_report(
    units: Sequence[ReportUnit], out: Path, *, settings: Settings, command: str, title: str | None = None,
    show_progress: bool = True,
) -> ReportResult:
    """Write ``out/index.html``, ``out/figures/*.png``, ``out/data/*.csv`` and the records as Parquet."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; --out names a report folder")
    if out.exists() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise UserError(f"{out}: exists and is not a report folder (no index.html); give another --out")
    if not units:
        raise UserError("nothing to report: the inputs hold no units")
    sections: list[Section] = [s for build in BUILDERS for s in build(units, settings)]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would outlive the move
    try:
        export_units(list(units), staging)
        figures = [f for s in sections for f in s.figures]
        images, csvs = {}, {}
        with progress_bar("report figures", total=len(figures), enabled=show_progress) as advance:
            for figure in figures:
                csvs[figure.name] = f"data/{figure.name}.csv"
                (staging / csvs[figure.name]).write_text(_csv(figure.rows), encoding="utf-8")
                if figure.draw is not None:
                    images[figure.name] = f"figures/{figure.name}.png"
                    figure.draw(staging / images[figure.name])
                advance(1)
        provenance = {"command": command, "heedful": package_versions(("heedful",))["heedful"], **asdict(settings)}
        (staging / "report.json").write_text(json.dumps({
            "provenance": provenance, "packages": package_versions(),
            "figures": [{"name": f.name, "title": f.title, "image": images.get(f.name), "data": csvs[f.name],
                         "units": list(dict.fromkeys(f.units))} for f in figures],
        }, indent=1), encoding="utf-8")
        page = render_page(title=title or _title(units), sections=sections, images=images, csvs=csvs, units=units,
                           provenance=provenance)
        (staging / "index.html").write_text(page, encoding="utf-8")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReportResult(out, [f.name for f in figures if f.draw], [f.name for f in figures if not f.draw])


def _title(units: Sequence[ReportUnit]) -> str:
    studies = list(dict.fromkeys(u.study.split(" (", 1)[0] for u in units if u.study))
    return "heedful report: " + (", ".join(studies) if studies else ", ".join(u.id for u in units[:3]))


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                         for k, v in row.items()})
    return buffer.getvalue()


def _replace(staging: Path, out: Path) -> None:
    """Move the finished report to ``out``; an earlier report there goes (its data was read before this)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)

