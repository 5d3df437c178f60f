"""The shipped studies' reports (docs/results/*-report/) redraw from their committed data, number for number.

Real records of real models (SmolLM2, Gemma 3 270M): every figure's CSV is recomputed from
``data/records.parquet`` and ``data/units.json`` and must equal the committed one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heedful.report.build import build_report
from heedful.report.sections import Settings
from heedful.report.sources import load_inputs

REPORTS = sorted((Path(__file__).resolve().parents[2] / "docs" / "results").glob("*-report"))


@pytest.mark.integration
@pytest.mark.parametrize("report", REPORTS, ids=[r.name for r in REPORTS])
def test_a_committed_report_redraws_from_its_data(report, tmp_path):
    provenance = json.loads((report / "report.json").read_text())["provenance"]
    settings = Settings(n_bootstrap=provenance["n_bootstrap"], seed=provenance["seed"],
                        baseline_model=provenance.get("baseline_model"))
    result = build_report(load_inputs([report]), tmp_path / "again", settings=settings, command="test",
                          show_progress=False)
    committed = sorted(p.name for p in (report / "data").glob("*.csv"))
    assert committed and sorted(p.name for p in (result.out / "data").glob("*.csv")) == committed
    for name in committed:
        assert (result.out / "data" / name).read_text() == (report / "data" / name).read_text(), name
    images = [f["image"] for f in json.loads((report / "report.json").read_text())["figures"] if f["image"]]
    assert (report / "index.html").is_file() and all((report / image).is_file() for image in images)
