"""``hf:`` specs and task cards, offline: local copies (Parquet, save_to_disk, CSV, JSON Lines) in the
hub copies' schemas, built from the real MMLU, SuperNI and BIG-bench data, must give the tasks
heedful's own loaders give for the same rows."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heedful.commands.tasks import app
from heedful.errors import HeedfulError
from heedful.prompts.builtin import designer_instruction
from heedful.prompts.render import render_instruction
from heedful.tasks.bigbench import bigbench_root, load_bigbench
from heedful.tasks.hub import HubSpec, builtin_card, load_hub, parse_hub_spec
from heedful.tasks.mmlu import load_mmlu
from heedful.tasks.spec import load_tasks
from heedful.tasks.superni import load_superni
from heedful.tasks.types import Task, TaskType
from shared_data import SHARED_DATA

datasets = pytest.importorskip("datasets")

MMLU = SHARED_DATA / "mmlu" / "test"
SUPERNI = SHARED_DATA / "superni" / "tasks"
SUBJECTS = ("abstract_algebra", "anatomy", "astronomy")
NI_TASKS = ("task641_esnli_classification", "task1356_xlsum_title_generation")
needs_mmlu = pytest.mark.skipif(not MMLU.is_dir(), reason=f"MMLU reference data not found at {MMLU}")
needs_superni = pytest.mark.skipif(not SUPERNI.is_dir(), reason=f"SuperNI reference data not found at {SUPERNI}")
try:
    BB_ROOT: Path | None = bigbench_root()
except HeedfulError:
    BB_ROOT = None
needs_bigbench = pytest.mark.skipif(BB_ROOT is None, reason="bigbench package not installed")


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    """Arrow caches in the test's folder, and the hub never contacted."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def _without(task: Task, *keys: str) -> Task:
    return dataclasses.replace(task, metadata={k: v for k, v in task.metadata.items() if k not in keys})


# --- MMLU: cais/mmlu's schema (question, subject, choices, answer) --------------------------------


def _mmlu_rows(subject: str, start: int, stop: int) -> list[list[str]]:
    with (MMLU / f"{subject}_test.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[start:stop]


@pytest.fixture
def mmlu_copy(tmp_path) -> dict[str, Path]:
    """The same rows as MMLU CSVs (test and dev folders) and as cais/mmlu-schema copies."""
    folders = {"test": tmp_path / "csv-test", "dev": tmp_path / "csv-dev"}
    tables: dict[str, list[dict]] = {"test": [], "dev": []}
    for split, (start, stop) in {"test": (0, 8), "dev": (8, 13)}.items():
        folders[split].mkdir()
        for subject in SUBJECTS:
            rows = _mmlu_rows(subject, start, stop)
            with (folders[split] / f"{subject}_{split}.csv").open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(rows)
            tables[split] += [
                {"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in rows
            ]
    test = datasets.Dataset.from_list(tables["test"])
    test.to_parquet(tmp_path / "mmlu.parquet")
    dev = datasets.Dataset.from_list(tables["dev"])
    datasets.DatasetDict({"test": test, "dev": dev}).save_to_disk(tmp_path / "mmlu-disk")
    return {**folders, "parquet": tmp_path / "mmlu.parquet", "disk": tmp_path / "mmlu-disk"}


@needs_mmlu
def test_mmlu_parquet_equals_mmlu_loader(mmlu_copy):
    hub = load_hub(f"{mmlu_copy['parquet']}#cais/mmlu")
    own = load_mmlu(mmlu_copy["test"])
    assert [t.name for t in hub] == [f"mmlu_{s}" for s in SUBJECTS]
    for got, want in zip(hub, own):
        assert got.metadata["path"] == str(mmlu_copy["parquet"])
        assert got.metadata["hf"] == {"config": "all", "splits": ["test"], "card": builtin_card("cais/mmlu").origin}
        # Everything but where the rows came from: name, type, instances, options, gold, metadata.
        assert _without(got, "path", "hf") == _without(want, "path")
        assert got.instances == want.instances and len(got.instances) == 8


@needs_mmlu
def test_mmlu_designer_prompt_is_lm_eval_prompt(mmlu_copy):
    hub = load_hub(f"{mmlu_copy['parquet']}#cais/mmlu")[0]
    own = load_mmlu(mmlu_copy["test"])[0]
    got = render_instruction(designer_instruction(hub), hub, hub.instances[0])
    want = render_instruction(designer_instruction(own), own, own.instances[0])
    assert got == want
    row = _mmlu_rows("abstract_algebra", 0, 1)[0]
    # lm-eval's doc_to_text with its description (tasks/mmlu/default), written out.
    letters = "".join(f"\n{letter}. {text}" for letter, text in zip("ABCD", row[1:5]))
    header = "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
    assert got.prompt == f"{header}{row[0].strip()}{letters}\nAnswer:"


@needs_mmlu
def test_mmlu_save_to_disk_with_dev_pool_equals_mmlu_loader(mmlu_copy):
    hub = load_hub(f"{mmlu_copy['disk']}@test,dev#cais/mmlu")
    own = load_mmlu(mmlu_copy["test"], mmlu_copy["dev"])
    assert [_without(t, "path", "hf") for t in hub] == [_without(t, "path") for t in own]
    assert [i.id for i in hub[0].split("train")] == ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"]


@needs_mmlu
def test_user_card_maps_csv_columns_and_letters(mmlu_copy, tmp_path):
    """MMLU's own CSV layout with a header, through a user's card: options as four columns, gold a letter."""
    path = tmp_path / "algebra.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        header = ["question", "A", "B", "C", "D", "answer"]
        csv.writer(handle).writerows([header, *_mmlu_rows("abstract_algebra", 0, 8)])
    card = tmp_path / "card.yaml"
    card.write_text(
        "name: mmlu_abstract_algebra\ninput: '{question}'\noptions: [A, B, C, D]\ngold: {letter: answer}\n"
        "source: mmlu\ncategory: abstract_algebra\nmetadata: {base_task: mmlu, subject: abstract_algebra}\n",
        encoding="utf-8",
    )
    (got,) = load_hub(f"{path}#{card}")
    want = load_mmlu(mmlu_copy["test"])[0]
    assert _without(got, "path", "hf") == _without(want, "path")
    assert got.metadata["hf"]["card"] == str(card)


@needs_mmlu
def test_cli_lists_hf_parquet_tasks(mmlu_copy):
    result = CliRunner().invoke(app, ["list", f"hf:{mmlu_copy['parquet']}#cais/mmlu"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"mmlu_{s}\tmultiple_choice\t8" for s in SUBJECTS]


# --- SuperNI: Muennighoff/natural-instructions' schema (task_name, id, definition, inputs, targets) --


@needs_superni
def test_superni_jsonl_equals_superni_loader(tmp_path):
    path = tmp_path / "ni.jsonl"
    rows = []
    for name in NI_TASKS:
        data = json.loads((SUPERNI / f"{name}.json").read_text(encoding="utf-8"))
        rows += [
            {"task_name": name, "id": inst["id"], "definition": data["Definition"][0],
             "inputs": inst["input"], "targets": out}
            for inst in data["Instances"] for out in inst["output"]
        ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    hub = load_tasks(f"hf:{path}@test#Muennighoff/natural-instructions")
    own = [load_superni(SUPERNI / f"{name}.json") for name in NI_TASKS]
    assert [t.name for t in hub] == list(NI_TASKS)
    for got, (want,) in zip(hub, own):
        assert (got.type, got.label_space, got.definition) == (want.type, want.label_space, want.definition)
        assert got.source == "superni"
        assert got.instances == want.instances  # ids, inputs, references and the 100/10/rest splits
        assert got.metric == "rougeL"
        # Tk-Instruct's `def` encoding: the definition alone, so the missing examples do not matter.
        inst = got.instances[0]
        assert render_instruction(designer_instruction(got), got, inst) == render_instruction(
            designer_instruction(want), want, inst
        )
    assert hub[0].type is TaskType.CLASSIFICATION and hub[1].type is TaskType.GENERATION


@needs_superni
def test_rows_sharing_an_id_pool_their_references(tmp_path):
    data = json.loads((SUPERNI / f"{NI_TASKS[0]}.json").read_text(encoding="utf-8"))
    first, second = data["Instances"][:2]
    row = {"task_name": NI_TASKS[0], "definition": data["Definition"][0]}
    rows = [
        {**row, "id": first["id"], "inputs": first["input"], "targets": "first"},
        {**row, "id": second["id"], "inputs": second["input"], "targets": "other"},
        {**row, "id": first["id"], "inputs": first["input"], "targets": "second"},
    ]
    path = tmp_path / "ni.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (task,) = load_hub(f"{path}#Muennighoff/natural-instructions")
    pooled = [(i.id, i.references) for i in task.instances]
    assert pooled == [(first["id"], ("first", "second")), (second["id"], ("other",))]
    rows[2]["inputs"] = "something else"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(HeedfulError, match=f"row 2: id '{first['id']}' is used twice"):
        load_hub(f"{path}#Muennighoff/natural-instructions")


# --- BIG-bench: hails/bigbench's schema (idx, inputs, targets, multiple_choice_targets/_scores) -----


def _bigbench_rows(name: str) -> list[dict]:
    """Rows as BIG-bench's bbseqio writes them for the hub (bigbench_bridge._parse_for_huggingface),
    from the examples heedful's loader keeps: the zero-shot prompt as ``inputs``, stripped."""
    raw = json.loads((BB_ROOT / name / "task.json").read_text(encoding="utf-8"))
    rows = []
    for inst in load_bigbench(name, shuffle_options=False)[0].instances:
        example = raw["examples"][int(inst.id)]
        scores = example.get("target_scores", {})
        text = raw.get("example_input_prefix", "\nQ: ") + example["input"]
        if scores and raw.get("append_choices_to_input", True):
            prefix = raw.get("choice_prefix", "\n  choice: ")
            text += prefix + prefix.join(sorted(scores))
        text = (raw.get("task_prefix", "") + text + raw.get("example_output_prefix", "\nA: ")).strip()
        target = example.get("target", [k for k, v in scores.items() if v == max(scores.values())][:1])
        rows.append({
            "idx": len(rows), "inputs": text, "targets": target if isinstance(target, list) else [target],
            "multiple_choice_targets": list(scores), "multiple_choice_scores": list(scores.values()),
        })
    return rows


@needs_bigbench
def test_bigbench_choice_task_matches_bigbench_loader(tmp_path):
    rows = _bigbench_rows("winowhy")
    path = tmp_path / "winowhy.parquet"
    datasets.Dataset.from_list(rows).to_parquet(path)
    (task,) = load_tasks(f"hf:{path}:winowhy@default#hails/bigbench")
    (own,) = load_bigbench("winowhy", shuffle_options=False)
    assert (task.name, task.type, task.metric) == ("winowhy", TaskType.MULTIPLE_CHOICE, "accuracy")
    assert task.source == "bigbench"
    assert task.metadata["base_task"] == "winowhy"
    got = [(i.options, i.gold, i.split) for i in task.instances]
    assert got == [(i.options, i.gold, "test") for i in own.instances]
    assert [i.input for i in task.instances] == [r["inputs"] for r in rows]
    assert [i.references for i in task.instances] == [tuple(r["targets"]) for r in rows]
    # No definition: the designer prompt is the input, i.e. BIG-bench's own zero-shot prompt.
    inst = task.instances[0]
    assert render_instruction(designer_instruction(task), task, inst).prompt == inst.input


@needs_bigbench
def test_bigbench_generation_task_matches_bigbench_loader(tmp_path):
    path = tmp_path / "operators.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _bigbench_rows("operators")), encoding="utf-8")
    (task,) = load_hub(f"{path}:operators@default#hails/bigbench")
    (own,) = load_bigbench("operators")
    assert (task.name, task.type, task.metric) == ("operators", TaskType.GENERATION, "exact_match")
    assert [(i.options, i.references) for i in task.instances] == [(None, i.references) for i in own.instances]


# --- specs, errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rest", "parsed"),
    [
        ("cais/mmlu", HubSpec("cais/mmlu")),
        ("cais/mmlu:all@test,dev", HubSpec("cais/mmlu", "all", ("test", "dev"))),
        ("/data/mmlu.parquet#cais/mmlu", HubSpec("/data/mmlu.parquet", card="cais/mmlu")),
        ("b/w.parquet:winowhy@default#c/bb.yaml", HubSpec("b/w.parquet", "winowhy", ("default",), "c/bb.yaml")),
    ],
)
def test_parse_hub_spec(rest, parsed):
    assert parse_hub_spec(rest) == parsed


@pytest.mark.parametrize(
    ("rest", "message"),
    [("cais/mmlu:@test", "empty CONFIG"), ("cais/mmlu@", "empty SPLIT"), ("cais/mmlu#", "empty CARD"),
     ("cais/mmlu@test,test", "splits must be distinct")],
)
def test_bad_specs(rest, message):
    with pytest.raises(HeedfulError, match=message):
        parse_hub_spec(rest)


def _one_line_error(spec: str) -> str:
    with pytest.raises(HeedfulError) as info:
        load_hub(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.parquet"
    datasets.Dataset.from_list(
        [{"question": "1+1?", "subject": "math", "choices": ["1", "2"], "answer": 1}]
    ).to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("name: x\ninput: q\nreferences: a\nprompt: y\n", "unknown key 'prompt'"),
        ("name: x\nreferences: a\n", "missing key 'input'"),
        ("name: x\ninput: q\noptions: 3\ngold: {index: a}\n", "key 'options' must be a non-empty string"),
        ("name: x\ninput: q\noptions: c\ngold: {position: a}\n", "key 'gold' kind must be one of index, letter"),
        ("name: x\ninput: q\noptions: c\n", "key 'gold' is missing"),
        ("name: x\ninput: q\nreferences: a\ntype: ranking\n", "key 'type' must be one of"),
        ("name: x\ninput: '{q.__class__}'\nreferences: a\n", "key 'input': placeholder"),
        ("name: x\ninput: q\nreferences: a\nsplit_sizes: {test: -1}\n", "key 'split_sizes' must map"),
        ("name: 'a{'\ninput: q\nreferences: a\n", "key 'name': malformed braces"),
        ("name: [x\n", "invalid YAML"),
        ("- name\n", "must be a YAML mapping"),
    ],
)
def test_bad_cards_name_the_file_and_key(tiny, tmp_path, card, message):
    path = tmp_path / "bad.yaml"
    path.write_text(card, encoding="utf-8")
    error = _one_line_error(f"{tiny}#{path}")
    assert error.startswith(str(path)) and message in error, error


def test_unmapped_column_lists_the_dataset_columns(tiny, tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text("name: x\ninput: '{questions}'\noptions: choices\ngold: {index: answer}\n", encoding="utf-8")
    error = _one_line_error(f"{tiny}#{path}")
    assert error == (
        f"{path}: key 'input' names column 'questions', which hf:{tiny}#{path} [test] lacks "
        "(columns: question, subject, choices, answer)"
    )


def test_gold_by_text_and_a_fixed_label_space(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [{"q": "2+2?", "x": "4", "y": "5", "answer": "4", "label": "yes"},
            {"q": "2+3?", "x": "6", "y": "5", "answer": "5", "label": "no"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    choice = tmp_path / "choice.yaml"
    choice.write_text("name: sums\ninput: 'Q: {q}'\noptions: [x, y]\ngold: {text: answer}\n", encoding="utf-8")
    (task,) = load_hub(f"{path}#{choice}")
    assert (task.type, task.metric) == (TaskType.MULTIPLE_CHOICE, "accuracy")
    assert [(i.input, i.options, i.gold, i.references) for i in task.instances] == [
        ("Q: 2+2?", ("4", "5"), 0, ("4",)), ("Q: 2+3?", ("6", "5"), 1, ("5",))
    ]
    labels = tmp_path / "labels.yaml"
    labels.write_text("name: sums\ninput: q\nreferences: label\nlabel_space: ['yes', 'no']\n", encoding="utf-8")
    (task,) = load_hub(f"{path}#{labels}")
    assert (task.type, task.label_space, task.metric) == (TaskType.CLASSIFICATION, ("yes", "no"), "exact_match")
    assert [(i.id, i.input, i.references, i.options) for i in task.instances] == [
        ("0", "2+2?", ("yes",), None), ("1", "2+3?", ("no",), None)
    ]
    # YAML reads a bare yes/no as booleans: the card says so instead of loading True/False labels.
    labels.write_text("name: sums\ninput: q\nreferences: label\nlabel_space: [yes, no]\n", encoding="utf-8")
    assert "key 'label_space' must be a non-empty list of strings" in _one_line_error(f"{path}#{labels}")


def test_bad_rows_name_the_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"question": "a", "subject": "s", "choices": ["x", "y"], "answer": 0}\n'
        '{"question": "b", "subject": "s", "choices": ["x", "y"], "answer": 4}\n',
        encoding="utf-8",
    )
    error = _one_line_error(f"{path}#cais/mmlu")
    assert error == f"hf:{path}#cais/mmlu [test] row 1: field 'answer' = 4 is not an index into 2 options"


def test_cards_and_sources_that_cannot_be_found(tiny, tmp_path):
    assert "a local copy needs a task card" in _one_line_error(str(tiny))
    assert "no built-in task card 'nope/data'" in _one_line_error(f"{tiny}#nope/data")
    assert "missing.yaml: no such task card" in _one_line_error(f"{tiny}#{tmp_path / 'missing.yaml'}")
    assert "no such file or folder" in _one_line_error(f"{tmp_path / 'absent.parquet'}#cais/mmlu")
    assert "no built-in task card for this dataset" in _one_line_error("someone/dataset")
    text = tmp_path / "data.txt"
    text.write_text("question\n", encoding="utf-8")
    assert "unknown file type" in _one_line_error(f"{text}#cais/mmlu")


def test_save_to_disk_folder_without_the_split(tmp_path):
    datasets.DatasetDict({"test": datasets.Dataset.from_list([{"question": "q"}])}).save_to_disk(tmp_path / "d")
    error = _one_line_error(f"{tmp_path / 'd'}@validation#cais/mmlu")
    assert error == f"{tmp_path / 'd'}: no split 'validation' (splits: test)"


def test_unreachable_hub_is_one_line():
    error = _one_line_error("cais/mmlu:abstract_algebra")
    assert error.startswith("hf:cais/mmlu: cannot reach the Hugging Face hub") and "local copy" in error


def test_missing_datasets_package(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    assert "need the 'datasets' package" in _one_line_error(f"{tiny}#cais/mmlu")


def test_builtin_cards_load_and_are_found_by_id():
    for dataset in ("cais/mmlu", "hails/bigbench", "Muennighoff/natural-instructions"):
        card = builtin_card(dataset)
        assert card is not None and dataset in card.datasets
    assert builtin_card("cais/mmlu").source == "mmlu"
