"""``heedful tasks list|show``: output contract and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heedful.commands.tasks import app
from heedful.errors import HeedfulError, UserError
from heedful.prompts.collection import load_collection
from heedful.prompts.render import render_instruction
from heedful.tasks.bigbench import bigbench_root, load_bigbench
from heedful.tasks.sampling import select_instances
from heedful.tasks.spec import load_tasks
from shared_data import SHARED_DATA

DATA = SHARED_DATA
SUPERNI = DATA / "superni" / "tasks"
BBL_COLLECTION = DATA / "instructions" / "bbl.jsonl"

try:
    bigbench_root()
    HAS_BIGBENCH = True
except HeedfulError:
    HAS_BIGBENCH = False
needs_bigbench = pytest.mark.skipif(not HAS_BIGBENCH, reason="bigbench package not installed")

runner = CliRunner()


def heedful(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point (cli.main turns HeedfulError into exit 2)."""
    return subprocess.run(
        [sys.executable, "-m", "heedful.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def own_tasks(tmp_path: Path) -> Path:
    path = tmp_path / "own.jsonl"
    lines = [
        {"task": "colors", "input": "Sky?", "options": ["red", "blue"], "gold": 1},
        {"task": "colors", "input": "Grass?", "options": ["green", "pink"], "gold": 0, "split": "train"},
        {"task": "capitals", "input": "France", "output": "Paris"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_list_is_tab_separated(own_tasks):
    result = runner.invoke(app, ["list", f"jsonl:{own_tasks}"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["colors\tmultiple_choice\t2", "capitals\tgeneration\t1"]


@needs_bigbench
def test_list_bigbench_matches_loader():
    result = runner.invoke(app, ["list", "bigbench:logical_deduction,winowhy"])
    assert result.exit_code == 0, result.output
    tasks = load_tasks("bigbench:logical_deduction,winowhy")
    assert result.output.splitlines() == [f"{t.name}\t{t.type.value}\t{len(t.instances)}" for t in tasks]


def test_show_json_contract(own_tasks):
    result = runner.invoke(app, ["show", "--data.tasks", f"jsonl:{own_tasks}", "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["task"], r["instruction_id"], r["instance_id"]) for r in records] == [
        ("colors", "designer", "0"), ("capitals", "designer", "0")
    ]
    assert set(records[0]) == {"task", "instruction_id", "instance_id", "prompt", "references", "options", "gold"}
    # A JSONL task without a definition: its designer instruction is the input alone.
    assert (records[0]["prompt"], records[0]["options"], records[0]["gold"]) == ("Sky?", ["red", "blue"], 1)
    assert (records[1]["prompt"], records[1]["options"], records[1]["gold"]) == ("France", None, None)
    train = runner.invoke(app, ["show", "--data.tasks", f"jsonl:{own_tasks}", "--data.split", "train", "--json", "--task", "colors"])
    assert [json.loads(line)["instance_id"] for line in train.output.splitlines()] == ["1"]


@needs_bigbench
def test_show_prints_exactly_the_prompts_eval_scores(tiny_llama_dir, tmp_path):
    """Same (task, instruction, instance) -> same prompt, options and gold as the eval record."""
    from heedful.evaluate.config import EvalConfig
    from heedful.evaluate.runner import evaluate
    from heedful.models.config import ModelConfig
    from heedful.prompts.config import PromptConfig
    from heedful.tasks.config import DataConfig

    options = ["--prompts.instructions", "designer,heedful", "--data.limit", "3", "--seed", "2", "--prompts.shots", "1"]
    result = runner.invoke(app, ["show", "--data.tasks", "bigbench:hindu_knowledge", *options, "--json"])
    assert result.exit_code == 0, result.output
    shown = {(r["task"], r["instruction_id"], r["instance_id"]): r for r in map(json.loads, result.output.splitlines())}
    config = EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks="bigbench:hindu_knowledge", limit=3), prompts=PromptConfig(instructions="designer,heedful", shots=1), seed=2, out=str(tmp_path / "eval"))
    records = evaluate(config, show_progress=False).records
    assert len(records) == len(shown) == 3 * 10
    for record in records:
        got = shown[(record.task, record.instruction_id, record.instance_id)]
        assert got["prompt"] == record.prompt
        assert [got["prompt"] + (" " if not got["prompt"][-1].isspace() else "") + o for o in got["options"]] == [
            record.prompt + o for o in record.options
        ]
        assert got["gold"] == record.gold
    plain = runner.invoke(app, ["show", "--data.tasks", "bigbench:hindu_knowledge", "--data.limit", "1"])
    assert "=== hindu_knowledge / designer / " in plain.output and "* [" in plain.output


@pytest.mark.skipif(not SUPERNI.is_dir(), reason=f"SuperNI data not found at {SUPERNI}")
def test_show_with_superni_encoding():
    encode = pytest.importorskip("heedful.prompts.superni").encode
    file = sorted(SUPERNI.glob("*.json"))[0]
    result = runner.invoke(app, ["show", "--data.tasks", f"superni:{file}", "--prompts.instructions", "superni:def+pos2", "--data.limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    (task,) = load_tasks(f"superni:{file}")
    records = [json.loads(line) for line in result.output.splitlines()]
    chosen = select_instances(task, "test", budget=2, seed=0)
    assert [r["prompt"] for r in records] == [encode(task, i.input, "def+pos2") for i in chosen]


@needs_bigbench
@pytest.mark.skipif(not BBL_COLLECTION.is_file(), reason=f"instruction collection not found at {BBL_COLLECTION}")
def test_show_with_instruction_record():
    result = runner.invoke(
        app,
        ["show", "--data.tasks", "bigbench:hindu_knowledge", "--prompts.instructions", str(BBL_COLLECTION),
         "--instruction_id", "NIV2/QA/1", "--data.limit", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    (task,) = load_bigbench("hindu_knowledge")
    record = next(i for i in load_collection(BBL_COLLECTION) if i.id == "NIV2/QA/1" and i.task == "hindu_knowledge")
    lines = result.output.splitlines()
    assert len(lines) == 2
    for line, inst in zip(lines, select_instances(task, "test", budget=2, seed=0)):
        expected = render_instruction(record, task, inst)
        got = json.loads(line)
        assert got["prompt"] == expected.prompt and got["instruction_id"] == "NIV2/QA/1"
        assert got["options"] == list(expected.choices) and got["gold"] == expected.gold
        assert got["references"] == list(expected.references)
    _heedful_error(
        ["show", "--data.tasks", "bigbench:hindu_knowledge", "--prompts.instructions", str(BBL_COLLECTION), "--instruction_id", "No/Such/1"],
        "with id 'No/Such/1' applies",
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert pattern in lines[0], lines[0]


def test_console_errors_exit_2_with_one_line(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input": "a", "output": "b"}\n{"input": "a" "output": "b"}\n')
    _one_line_error(heedful("tasks", "show", "--data.tasks", f"jsonl:{broken}", "--json"), f"{broken}:2:15: malformed JSON")
    _one_line_error(heedful("tasks", "list", "glue:sst2"), "unknown task spec 'glue:sst2' (valid: superni:")


def _heedful_error(args: list[str], pattern: str) -> None:
    """In-process: the command raises a UserError (which cli.main prints, exit 2)."""
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UserError), result.output
    message = str(result.exception)
    assert "\n" not in message and pattern in message, message


def test_user_errors_are_heedful_errors(tmp_path, own_tasks):
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"output": "b"}\n')
    _heedful_error(["list", f"jsonl:{missing}"], f"{missing}:1: missing field 'input'")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _heedful_error(["list", f"jsonl:{empty}"], "no instances (empty file)")
    _heedful_error(["show", "--data.tasks", f"jsonl:{own_tasks}", "--task", "colors", "--data.split", "val"], "no instances in split 'val'")
    _heedful_error(["show", "--data.tasks", f"jsonl:{own_tasks}", "--task", "nope"], "no task 'nope'")
    _heedful_error(["show", "--data.tasks", f"jsonl:{own_tasks}", "--instruction_id", "x"], "no instruction of 'designer' with id 'x'")
    _heedful_error(["show", "--data.tasks", f"jsonl:{own_tasks}", "--data.split", "dev"], "--data.split: expected one of train, val, test, got 'dev'")


@pytest.mark.parametrize("pattern", [r"(?P<x>(a|aa)*)c", r"(?P<x>(a|aa)*)[bc]"])
def test_a_catastrophic_extract_pattern_is_a_one_line_error_within_5_s(tmp_path: Path, pattern: str) -> None:
    """The first pattern fails fast in the `regex` engine (no 'c'); the second backtracks until the time limit."""
    tasks = tmp_path / "aaa.jsonl"
    tasks.write_text(json.dumps({"task": "aaa", "input": "a" * 60, "output": "x"}) + "\n", encoding="utf-8")
    collection = tmp_path / "hostile.jsonl"
    record = {"id": "evil/1", "task": "aaa", "kind": "observed", "collection": "x", "template": "{x}", "extract": pattern}
    collection.write_text(json.dumps({**record, "id": "fine/1", "template": "{input}", "extract": None}) + "\n" + json.dumps(record) + "\n")
    start = time.monotonic()
    proc = heedful("tasks", "show", "--data.tasks", f"jsonl:{tasks}", "--prompts.instructions", str(collection), "--instruction_id", "evil/1")
    assert time.monotonic() - start < 5
    _one_line_error(proc, f"{collection}:2")
    assert "evil/1" in proc.stderr


def test_an_instruction_that_does_not_fit_is_skipped_as_eval_skips_it(tmp_path: Path, own_tasks: Path) -> None:
    collection = tmp_path / "coll.jsonl"
    base = {"task": "colors", "kind": "observed", "collection": "x"}
    collection.write_text(
        json.dumps({**base, "id": "fits", "template": "Q: {input}"}) + "\n"
        + json.dumps({**base, "id": "needs-options", "template": "{input} {choiceA}", "choice_fields": "choice{letter}",
                      "task": "capitals"}) + "\n",
        encoding="utf-8",
    )
    proc = heedful("tasks", "show", "--data.tasks", f"jsonl:{own_tasks}", "--prompts.instructions", str(collection), "--json")
    assert proc.returncode == 0, proc.stderr
    shown = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["task"], r["instruction_id"]) for r in shown] == [("colors", "fits")]
    assert "skipped instruction needs-options for task capitals" in proc.stderr
