"""``heedful audit`` end to end on a tiny model: every measure, the search, the verdict and the page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_audit_measures_searches_and_writes_its_page(tmp_path, tiny_llama_dir: Path):
    tasks = tmp_path / "colors.jsonl"
    tasks.write_text("".join(
        json.dumps({"task": "colors", "definition": "Name the colour of the thing.", "input": f"Thing {i} is?",
                    "options": ["red", "blue", "green"], "gold": i % 3}) + "\n" for i in range(8)), encoding="utf-8")
    phrasings = tmp_path / "phrasings.jsonl"
    phrasings.write_text("".join(
        json.dumps({"id": f"u-{i}", "task": "colors", "kind": "unobserved", "collection": "tiny", "template": t}) + "\n"
        for i, t in enumerate(["Q: {input}\nA:", "{input}\nAnswer:", "Tell me: {input}\n"])), encoding="utf-8")
    out = tmp_path / "audit"
    done = subprocess.run([
        sys.executable, "-m", "heedful.cli", "audit", "--model.name", str(tiny_llama_dir), "--data.tasks",
        f"jsonl:{tasks}", "--data.limit", "6", "--phrasings", f"designer,{phrasings}", "--formats", "3",
        "--budget", "12", "--reliance", "[none,nonsense]", "--n_bootstrap", "50", "--out", str(out),
    ], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    audit = json.loads((out / "audit.json").read_text())
    assert audit["phrasing"]["n_prompts"] == 4 and audit["format"]["n_prompts"] == 3
    assert 0 <= audit["phrasing"]["spread"]["low"] <= audit["phrasing"]["spread"]["value"] <= audit["phrasing"]["spread"]["high"]
    assert {r["kind"] for r in audit["reliance"]} == {"none", "nonsense"}
    assert audit["search"]["calls"] <= 12 and audit["search"]["pool"] > 100
    assert audit["baselines"]["chance"] == 1 / 3
    assert audit["verdict"] and all("[figure" in line for line in audit["verdict"])
    assert "Audit of" in done.stdout and audit["verdict"][-1].split(" [figure")[0][:40] in done.stdout
    made = {f["name"] for f in json.loads((out / "report" / "report.json").read_text())["figures"]}
    assert {n.split("-audit")[0] for n in made} >= {"audit-summary", "audit-phrasing", "audit-format",
                                                     "audit-reliance"}
    assert "designer" in (out / "report" / "index.html").read_text()
