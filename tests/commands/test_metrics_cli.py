"""``heedful metrics`` run as a subprocess through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from heedful.evaluate.metrics import aggregate, round_scores
from shared_data import SHARED_DATA

DATA = SHARED_DATA
SUPERNI_TASKS = DATA / "superni" / "tasks"
# The console script the install put beside this interpreter (the venv's bin/ need not be on PATH).
HEEDFUL = str(Path(sys.executable).with_name("heedful"))
needs_superni = pytest.mark.skipif(
    not SUPERNI_TASKS.is_dir(), reason=f"SuperNI test tasks not found at {SUPERNI_TASKS}"
)

TASKS = {  # two SuperNI test tasks of an exact-match category, one of a ROUGE-L category
    "task1386_anli_r2_entailment": 7,
    "task1388_cb_entailment": 3,
    "task1356_xlsum_title_generation": 5,
}


def run_metrics(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [HEEDFUL, "metrics", *args], capture_output=True, text=True, timeout=300, env=env
    )


def superni_records() -> list[dict]:
    """Gold answers for even instances, another instance's answer for odd ones."""
    records = []
    for name, count in TASKS.items():
        task = json.loads((SUPERNI_TASKS / f"{name}.json").read_text(encoding="utf-8"))
        instances = task["Instances"][:count]
        for i, inst in enumerate(instances):
            other = instances[(i + 1) % count]["output"][0]
            assert i % 2 == 0 or other.lower() != inst["output"][0].lower(), "pick other counts"
            records.append(
                {
                    "task": name,
                    "id": inst["id"],
                    "prediction": inst["output"][0] if i % 2 == 0 else other,
                    "references": inst["output"],
                    "category": task["Categories"][0],
                }
            )
    return records


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


@needs_superni
def test_prints_task_category_and_overall_scores(tmp_path):
    records = superni_records()
    path = write_jsonl(tmp_path / "pred.jsonl", records)
    proc = run_metrics(str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)

    assert out == round_scores(aggregate(records, percent=True), 4)
    assert out["overall"]["n"] == sum(TASKS.values())
    assert {t: v["n"] for t, v in out["tasks"].items()} == TASKS
    # Gold on even instances and a different answer on odd ones: EM is the share of even
    # indices, per task.
    for name, count in TASKS.items():
        evens = (count + 1) // 2
        assert out["tasks"][name]["exact_match"] == round(100.0 * evens / count, 4)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(r["references"][0], r["prediction"])["rougeL"].fmeasure for r in records]
    assert out["overall"]["rougeL"] == round(100.0 * sum(rouge) / len(rouge), 4)

    categories = out["categories"]
    assert categories["Textual Entailment"]["n"] == 10
    assert categories["Textual Entailment"]["metric"] == "exact_match"
    assert categories["Title Generation"]["metric"] == "rougeL"


def test_digits_option_and_blank_lines(tmp_path):
    path = tmp_path / "pred.jsonl"
    rows = [
        {"task": "t", "id": 1, "prediction": "yes", "references": ["Yes."]},
        {"task": "t", "id": 2, "prediction": "no", "references": ["yes", "No!"]},
        {"task": "t", "id": 3, "prediction": "maybe", "references": ["yes"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    proc = run_metrics(str(path), "--digits", "1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["overall"] == {"exact_match": 66.7, "rougeL": 66.7, "n": 3}
    assert out["categories"] == {}


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_malformed_json_names_file_line_and_column(tmp_path):
    good = {"task": "t", "id": "1", "prediction": "a", "references": ["a"]}
    path = tmp_path / "pred.jsonl"
    bad = '{"task": "t", "id": 2,,}'
    column = bad.index(",,") + 2  # 1-based column of the stray second comma
    path.write_text(json.dumps(good) + "\n" + bad + "\n", encoding="utf-8")
    assert_one_line_error(run_metrics(str(path)), f"{path}:2:{column}:", "invalid JSON")


@pytest.mark.parametrize("field", ["task", "id", "prediction", "references"])
def test_missing_field_names_file_line_and_field(tmp_path, field):
    row = {"task": "t", "id": "2", "prediction": "a", "references": ["a"]}
    del row[field]
    path = write_jsonl(
        tmp_path / "pred.jsonl",
        [{"task": "t", "id": "1", "prediction": "a", "references": ["a"]}, row],
    )
    assert_one_line_error(run_metrics(str(path)), f"{path}:2:", f"missing field '{field}'")


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({"task": "t", "id": "1", "prediction": "a", "references": "a"}, "field 'references'"),
        ({"task": "t", "id": "1", "prediction": "a", "references": []}, "field 'references'"),
        ({"task": "t", "id": "1", "prediction": None, "references": ["a"]}, "field 'prediction'"),
        (["not", "an", "object"], "expected a JSON object"),
    ],
)
def test_mistyped_records(tmp_path, row, fragment):
    path = write_jsonl(tmp_path / "pred.jsonl", [row])
    assert_one_line_error(run_metrics(str(path)), f"{path}:1:", fragment)


def test_duplicate_ids(tmp_path):
    row = {"task": "t", "id": "1", "prediction": "a", "references": ["a"]}
    path = write_jsonl(tmp_path / "pred.jsonl", [row, row])
    assert_one_line_error(run_metrics(str(path)), f"{path}:2:", "duplicate id")


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "pred.jsonl"
    path.write_text(content, encoding="utf-8")
    assert_one_line_error(run_metrics(str(path)), str(path), "empty file")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    assert_one_line_error(run_metrics(str(path)), str(path), "no such file")


def test_xlingual_with_an_unloadable_tokenizer(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"task": "t", "id": 1, "prediction": "a", "references": ["a"]}]
    )
    assert_one_line_error(
        run_metrics(str(path), "--xlingual", "--xlingual-tokenizer", str(tmp_path)),
        "--xlingual-tokenizer",
    )


def test_xlingual_scores_non_latin_text(tmp_path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    texts = ["机器学习是人工智能的一个分支", "машинное обучение", "التعلم الآلي"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts * 5, vocab_size=300, min_frequency=1, show_progress=False)
    GPT2TokenizerFast(tokenizer_object=bpe._tokenizer).save_pretrained(tmp_path / "bpe")
    rows = [{"task": "t", "id": i, "prediction": t, "references": [t]} for i, t in enumerate(texts)]
    path = write_jsonl(tmp_path / "p.jsonl", rows)

    default = run_metrics(str(path))
    xlingual = run_metrics(str(path), "--xlingual", "--xlingual-tokenizer", str(tmp_path / "bpe"))
    assert default.returncode == 0 and xlingual.returncode == 0, (default.stderr, xlingual.stderr)
    # The default tokenizer keeps [a-z0-9] only, so identical non-Latin text scores 0 there.
    assert json.loads(default.stdout)["overall"]["rougeL"] == 0.0
    assert json.loads(xlingual.stdout)["overall"]["rougeL"] == 100.0
