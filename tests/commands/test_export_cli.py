"""``heedful export``: two evaluations of a tiny model as tidy tables that pandas reads, Parquet and CSV alike."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from heedful.commands import registry
from heedful.errors import UserError
from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig

app = typer.Typer()
registry.register(app)
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llama_dir: Path) -> list[Path]:
    """Two eval run folders: multiple choice and generation, under a collection's two phrasings and the designer's."""
    root = tmp_path_factory.mktemp("export")
    tasks = root / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(line) + "\n" for line in [
        *({"task": "colors", "input": f"What colour is thing {i}?", "options": ["red", "blue", "green"], "gold": i % 3}
          for i in range(4)),
        *({"task": "echo", "input": f"Say {word}.", "output": word} for word in ("yes", "no", "maybe")),
    ]), encoding="utf-8")
    collection = root / "phrasings.jsonl"
    collection.write_text("".join(
        json.dumps({"id": f"{task}-{i}", "task": task, "kind": "observed", "collection": "tiny", "template": t}) + "\n"
        for task in ("colors", "echo") for i, t in enumerate(["Q: {input}\nA:", "{input}\nAnswer:"])), encoding="utf-8")
    folders = []
    for name, instructions in (("phrasings", str(collection)), ("designer", "designer")):
        config = EvalConfig(model=ModelConfig(name=str(tiny_llama_dir)), data=DataConfig(tasks=f"jsonl:{tasks}"),
                            prompts=PromptConfig(instructions=instructions),
                            scoring=ScoringConfig(max_new_tokens=3), out=str(root / name))
        evaluate(config, show_progress=False)
        folders.append(root / name)
    return folders


def _plain(records) -> list[dict]:
    """Records in one order, less the cache key of their model output (records.jsonl leaves it out)."""
    return sorted(({k: v for k, v in r.items() if k != "output_key"} for r in records),
                  key=lambda r: (r["prompt"], r["instance_id"]))


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def test_records_and_summaries_read_back_the_same_from_parquet_and_csv(runs, tmp_path):
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    out = tmp_path / "tables"
    for fmt in ("parquet", "csv"):
        result = runner.invoke(app, ["export", *map(str, runs), "--out", str(out), "--format", fmt,
                                     "--n-bootstrap", "200"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["records.csv", "records.parquet", "summaries.csv",
                                                      "summaries.parquet"]  # no temporary files left behind
    stored = {folder.name: _records(folder) for folder in runs}
    n_records = sum(len(records) for records in stored.values())
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for unit, records in stored.items():
        for r in records:
            groups[(unit, r["task"], r["instruction_id"])].append(r["score"])
    assert f"{out / 'records.csv'}\t{n_records} rows" in result.output
    assert f"{out / 'summaries.csv'}\t{len(groups)} rows" in result.output

    for name, rows in (("records", n_records), ("summaries", len(groups))):
        parquet = pq.read_table(out / f"{name}.parquet")
        csv = pa_csv.read_csv(out / f"{name}.csv", parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                              convert_options=pa_csv.ConvertOptions(column_types=parquet.schema, strings_can_be_null=True,
                                                                    quoted_strings_can_be_null=False))
        assert parquet.num_rows == rows
        assert csv.equals(parquet), name

    pd = pytest.importorskip("pandas")
    records = pd.read_parquet(out / "records.parquet")
    assert len(records) == len(pd.read_csv(out / "records.csv")) == n_records
    assert sorted(records["unit"].unique()) == ["designer", "phrasings"]
    back = [json.loads(text) for text in records["record"]]
    # the store's records, as records.jsonl has them (less the cache key of the model output)
    assert _plain(back) == _plain(r for rs in stored.values() for r in rs)
    assert list(records["score"]) == [r["score"] for r in back]

    summaries = pd.read_parquet(out / "summaries.parquet")
    assert len(summaries) == len(pd.read_csv(out / "summaries.csv")) == len(groups)
    for row in summaries.itertuples():
        scores = groups[(row.unit, row.task, row.instruction_id)]
        assert row.n == len(scores) and row.score == pytest.approx(sum(scores) / len(scores))
        assert row.ci_low <= row.score <= row.ci_high
    pd.testing.assert_series_equal(pd.read_csv(out / "summaries.csv")["score"], summaries["score"])
    assert set(summaries.loc[summaries.task == "echo", "rouge_l"].notna()) == {True}
    assert set(summaries.loc[summaries.task == "colors", "rouge_l"].isna()) == {True}


def test_bad_inputs_are_one_line_errors(runs, tmp_path):
    for args, message in (
        ([], "give at least one study folder, run folder or report folder"),
        ([str(tmp_path)], f"{tmp_path}: not a heedful run folder"),
        ([str(tmp_path / "missing")], f"{tmp_path / 'missing'}: no such folder"),
        ([str(runs[0]), "--format", "xlsx"], "--format: expected one of parquet, csv, got 'xlsx'"),
    ):
        result = runner.invoke(app, ["export", *args, "--out", str(tmp_path / "out")])
        assert isinstance(result.exception, UserError), result.output
        assert str(result.exception).startswith(message) and "\n" not in str(result.exception)
    assert not (tmp_path / "out").exists()
    proc = subprocess.run([sys.executable, "-m", "heedful.cli", "export", str(tmp_path), "--out", str(tmp_path / "o")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
