"""Reading finished run folders back and tabulating them (``heedful summarize``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from heedful.analysis.runs import comparison_table, load_run, score_rows
from heedful.errors import HeedfulError
from heedful.evaluate.records import Record
from heedful.store import Store
from record_factory import record


def _record(task, category, instance, prediction, reference, instruction="superni/def+pos2"):
    return record(
        task=task, category=category, instance_id=instance, instruction_id=instruction,
        instruction_kind="designer", prediction=prediction, references=[reference], gold=reference,
        metric="exact_match", score=float(prediction == reference), output_key=f"{task}:{instance}:{instruction}",
    )


def _store(folder: Path, run_id: str, records: list[Record]) -> None:
    with Store(folder / "heedful.sqlite") as store:
        store.start_run(run_id, "eval", {}, {})
        store.put_records(run_id, [r.to_dict() for r in records])
        store.finish_run(run_id)


def _eval_run(folder: Path, records: list[Record], instructions="superni:def+pos2") -> Path:
    folder.mkdir(parents=True)
    _store(folder, "eval-1", records)
    (folder / "results.json").write_text(json.dumps({"run_id": "eval-1", "config": {"prompts": {"instructions": instructions}}}))
    return folder


def _stl_run(folder: Path, per_task: dict[str, list[Record]], **config) -> Path:
    """A finished STL train run: one unit folder per task, its evaluation mirrored in the run store."""
    folder.mkdir(parents=True)
    cfg = {"data": {"setting": "stl", "budget": "10"}, "method": {"name": "lora"}, "prompts": {"instructions": "superni:def+pos2"},
           "loop": {"kl_weight": 0.0}, **config}
    (folder / "train_config.json").write_text(json.dumps({"run_id": "train-1", "config": cfg}))
    for i, (task, records) in enumerate(per_task.items()):
        (folder / task).mkdir()
        (folder / task / "unit.json").write_text(json.dumps({"name": task, "eval_run_id": f"eval-{i}"}))
        _store(folder, f"eval-{i}", records)
        # a mid-training evaluation of the same unit is not a final result
        _store(folder, f"eval-step-{i}", [_record(task, "C", "x", "wrong", "right")])
    return folder


def test_train_run_rows_rescore_the_final_evaluations(tmp_path):
    run = _stl_run(tmp_path / "stl-10", {
        "t1": [_record("t1", "Entailment", "a", "yes", "yes"), _record("t1", "Entailment", "b", "no", "yes")],
        "t2": [_record("t2", "Title", "c", "the cat sat", "the cat sat down")],
    })
    loaded = load_run(run)
    assert loaded.kind == "train" and len(loaded.records) == 3
    assert loaded.records == [
        _record("t1", "Entailment", "a", "yes", "yes"), _record("t1", "Entailment", "b", "no", "yes"),
        _record("t2", "Title", "c", "the cat sat", "the cat sat down"),
    ]  # read back as Records, field for field
    [row] = score_rows([loaded], root=tmp_path)
    assert row["run"] == "stl-10" and row["setting"] == "stl" and row["budget"] == "10"
    assert row["prompts"] == "superni:def+pos2" and row["instruction"] == "superni/def+pos2"
    # fractions (0..1), as every stored score
    assert row["tasks"]["t1"]["exact_match"] == pytest.approx(0.5) and row["tasks"]["t1"]["n"] == 2
    # ROUGE-L of "the cat sat" against "the cat sat down": P = 1, R = 3/4, F = 6/7
    assert row["tasks"]["t2"]["rougeL"] == pytest.approx(6 / 7)
    assert row["overall"]["exact_match"] == pytest.approx(1 / 3)
    assert set(row["categories"]) == {"Entailment", "Title"}


def test_one_row_per_instruction_and_untuned_rows_first(tmp_path):
    base = _eval_run(tmp_path / "base", [
        _record("t1", "E", "a", "yes", "yes", "ref"), _record("t1", "E", "a", "no", "yes", "para"),
    ], instructions="ref.jsonl")
    tuned = _stl_run(tmp_path / "tuned", {"t1": [_record("t1", "E", "a", "yes", "yes")]})
    rows = score_rows([load_run(tuned), load_run(base)], root=tmp_path)
    by_instruction = {(r["run"], r["instruction"]): r["overall"]["exact_match"] for r in rows}
    assert by_instruction == {("tuned", "superni/def+pos2"): 1.0, ("base", "ref"): 1.0, ("base", "para"): 0.0}
    table = comparison_table(rows, by="category", metric="rougeL")
    assert [c.header for c in table.columns] == ["run", "setting", "method", "budget", "prompts", "instruction", "E", "overall"]
    assert list(table.columns[0].cells) == ["base", "base", "tuned"]
    assert list(table.columns[-1].cells) == ["0.0", "100.0", "100.0"]  # percent, at display only
    with pytest.raises(HeedfulError, match="unknown metric 'bleu'"):
        comparison_table(rows, metric="bleu")


def test_unfinished_or_foreign_folders_are_named_in_the_error(tmp_path):
    with pytest.raises(HeedfulError, match=f"{tmp_path}: not a heedful run folder"):
        load_run(tmp_path)
    (tmp_path / "train_config.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(HeedfulError, match="training not finished"):
        load_run(tmp_path)


def test_stored_records_are_checked_and_old_percent_records_read_as_fractions(tmp_path):
    good = _record("t1", "E", "a", "the cat", "the cat sat")
    legacy = {k: v for k, v in good.to_dict().items() if k != "rouge_l"}
    legacy.update(instance_id="b", exact_match=0.0, rougeL=80.0)  # as stored before scores were fractions
    run = _eval_run(tmp_path / "old", [])
    with Store(run / "heedful.sqlite") as store:
        store.put_records("eval-1", [legacy])
    [record] = load_run(run).records
    assert record.instance_id == "b" and record.exact_match == 0.0 and record.rouge_l == pytest.approx(0.8)

    broken = dict(good.to_dict(), score=75.0)
    bad = _eval_run(tmp_path / "bad", [])
    with Store(bad / "heedful.sqlite") as store:
        store.put_records("eval-1", [broken])
    with pytest.raises(HeedfulError, match=r"evaluation eval-1, record 0: field 'score' is 75.0, not a fraction"):
        load_run(bad)


def test_summarize_cli_prints_the_table_and_writes_json(tmp_path):
    run = _stl_run(tmp_path / "stl-10", {"t1": [_record("t1", "E", "a", "yes", "yes")]})
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "heedful.cli", "summarize", str(run), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stl-10" in proc.stdout and "100.0" in proc.stdout
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["tasks"]["t1"]["exact_match"] == 1.0 and "packages" in saved["environment"]
    bad = subprocess.run([sys.executable, "-m", "heedful.cli", "summarize", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a heedful run folder" in bad.stderr
