"""The report folder: its files, its round trip through the exported data, its atomic write, its CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from heedful.errors import UserError
from heedful.report.build import build_report
from heedful.report.sections import Settings
from heedful.report.sources import load_inputs
from report_units import eval_unit, every_kind_of_unit

SETTINGS = Settings(n_bootstrap=50, seed=0)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    build_report(every_kind_of_unit(folder), folder / "out", settings=SETTINGS, command="heedful report test",
                 show_progress=False)
    return folder / "out"


def test_the_report_holds_a_png_and_a_csv_per_figure_and_every_record(report):
    made = json.loads((report / "report.json").read_text())
    names = {re.sub(r"-[0-9a-f]{6}(?=-|$)", "", f["name"]) for f in made["figures"]}  # without the ids' hashes
    for prefix in ("kinds-", "tasks-", "axis-p-shots", "alignment-", "tsne-reps", "distance-drop-reps",
                   "efficiency-mtl", "efficiency-match", "categories-", "alterations-generation", "scores"):
        assert any(n.startswith(prefix) for n in names), prefix
    for figure in made["figures"]:
        assert (report / figure["data"]).stat().st_size > 0
        if figure["image"]:
            assert (report / figure["image"]).read_bytes()[:4] == b"\x89PNG"
    page = (report / "index.html").read_text()
    assert "heedful report test" in page and "data/records.parquet" in page and "http" not in page.replace(
        "http-equiv", "")  # opens from disk: nothing fetched from a network
    assert made["provenance"]["seed"] == 0 and made["packages"]["numpy"]


def test_a_report_redraws_from_its_own_exported_data_with_identical_numbers(report, tmp_path):
    units = load_inputs([report])
    assert sum(len(u.records) for u in units) > 0 and any(u.embedding for u in units)  # t-SNE coordinates, not vectors
    build_report(units, tmp_path / "again", settings=SETTINGS, command="heedful report test", show_progress=False)
    for csv in sorted((report / "data").glob("*.csv")):
        assert (tmp_path / "again" / "data" / csv.name).read_text() == csv.read_text(), csv.name


def test_a_failed_build_leaves_the_previous_report_whole(report, tmp_path, monkeypatch):
    out = tmp_path / "kept"
    build_report([eval_unit("u", {"designer": 0.5, "unobserved": 0.2})], out, settings=SETTINGS, command="c",
                 show_progress=False)
    before = (out / "index.html").read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("drawing failed")
    monkeypatch.setattr("heedful.report.plots.grouped_bars", boom)
    with pytest.raises(RuntimeError):
        build_report([eval_unit("v", {"designer": 0.1, "unobserved": 0.9})], out, settings=SETTINGS, command="c",
                     show_progress=False)
    assert (out / "index.html").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # no staging folder left behind


def test_report_refuses_to_overwrite_a_folder_that_is_not_a_report(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a report folder"):
        build_report([eval_unit("u", {"designer": 0.5})], tmp_path / "mine", settings=SETTINGS, command="c",
                     show_progress=False)


def test_cli_names_a_missing_input_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "heedful.cli", "report", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such folder (give a study folder, "
                                                "a run folder or a report folder)"]
