"""``heedful report`` on a study a tiny model ran: its main path, end to end, from the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from heedful.studies.executors import run_study
from heedful.studies.spec import load_study


def test_report_draws_a_finished_study_from_the_command_line(tmp_path, tiny_llama_dir: Path):
    tasks = tmp_path / "colors.jsonl"
    tasks.write_text("".join(
        json.dumps({"task": "colors", "input": f"What colour is thing {i}?", "options": ["red", "blue", "green"],
                    "gold": i % 3}) + "\n" for i in range(4)), encoding="utf-8")
    collection = tmp_path / "phrasings.jsonl"
    collection.write_text("".join(
        json.dumps({"id": f"{kind}-{i}", "task": "colors", "kind": kind, "collection": "tiny", "template": t}) + "\n"
        for kind, templates in {"observed": ["Q: {input}\nA:", "{input}\nAnswer:"],
                                "unobserved": ["Tell me: {input}\n", "{input} The colour is", "Say: {input}"]}.items()
        for i, t in enumerate(templates)), encoding="utf-8")
    prompts = {"model": {"name": str(tiny_llama_dir)}, "data": {"tasks": f"jsonl:{tasks}"},
               "prompts": {"instructions": str(collection)}}
    study_file = tmp_path / "tiny.yaml"
    study_file.write_text(yaml.safe_dump({"study": "tiny", "units": {
        "phrasings": {"command": "robustness", "config": {**prompts, "n_bootstrap": 20}},
        "distances": {"command": "representations", "config": prompts},
    }}), encoding="utf-8")
    states = run_study(load_study(study_file, out=tmp_path / "study"), show_progress=False)
    assert {s.status for s in states.values()} == {"done"}

    done = subprocess.run([sys.executable, "-m", "heedful.cli", "report", str(tmp_path / "study"), "--out",
                           str(tmp_path / "report"), "--n-bootstrap", "50", "--no-progress"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stderr
    made = {re.sub(r"-[0-9a-f]{6}(?=-|$)", "", f["name"])  # without the ids' hashes
            for f in json.loads((tmp_path / "report" / "report.json").read_text())["figures"]}
    assert {"kinds-phrasings", "tsne-distances", "distance-drop-distances", "scores"} <= made
    page = (tmp_path / "report" / "index.html").read_text()
    assert "heedful representations --config" in page  # each unit's command to re-run it
