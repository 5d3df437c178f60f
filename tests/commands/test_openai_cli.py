"""``heedful eval --model.name openai:MODEL --model.base_url URL`` against a local OpenAI-compatible server.

The server runs the same saved tiny model that ``heedful eval`` loads locally; both runs
must give the same records (log-likelihoods within float32 rounding, the same answers).
"""

from __future__ import annotations

import json
import socket

import pytest
import typer
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from heedful.commands import registry
from heedful.errors import HeedfulError
from heedful.models import openai_api
from openai_server import TinyOpenAIServer


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    registry.register(app)
    return app


def write_tasks(path):
    rows = [{"task": "colors", "id": f"c{i}", "input": f"Is item {i} red or blue?", "options": ["red", "blue"],
             "gold": i % 2} for i in range(4)]
    rows += [{"task": "echo", "id": f"e{i}", "input": f"Repeat {i}", "output": f"{i}"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_over_the_api_equals_the_local_model(tmp_path, tiny_llama_dir, app):
    tasks = write_tasks(tmp_path / "tasks.jsonl")
    common = ["--data.tasks", f"jsonl:{tasks}", "--scoring.max_new_tokens", "6"]
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    runner = CliRunner()
    with TinyOpenAIServer(model, tokenizer) as server:
        result = runner.invoke(app, ["eval", "--model.name", "openai:tiny", "--model.base_url", server.url,
                                     *common, "--out", str(tmp_path / "api")])
        assert result.exit_code == 0, result.output
        assert {path for path, _ in server.received} == {"/v1/completions"}
        assert {body["model"] for _, body in server.received} == {"tiny"}
    local = runner.invoke(app, ["eval", "--model.name", str(tiny_llama_dir), *common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    api_records = [json.loads(line) for line in (tmp_path / "api" / "records.jsonl").read_text().splitlines()]
    local_records = [json.loads(line) for line in (tmp_path / "local" / "records.jsonl").read_text().splitlines()]
    assert len(api_records) == len(local_records) == 7
    for got, want in zip(api_records, local_records, strict=True):
        assert (got["task"], got["instance_id"], got["prompt"], got["prediction"]) == (
            want["task"], want["instance_id"], want["prompt"], want["prediction"]
        )
        if want["logliks"] is not None:
            assert got["logliks"] == pytest.approx(want["logliks"], abs=1e-4)
    results = json.loads((tmp_path / "api" / "results.json").read_text())
    assert results["config"]["model"]["base_url"] == server.url


def test_eval_against_a_server_that_is_down_fails_in_one_line(tmp_path, app, monkeypatch):
    monkeypatch.setattr(openai_api, "MAX_RETRIES", 0)  # the default backs off for ~15 s first
    tasks = write_tasks(tmp_path / "tasks.jsonl")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    result = CliRunner().invoke(app, ["eval", "--model.name", "openai:tiny", "--model.base_url", url,
                                      "--data.tasks", f"jsonl:{tasks}", "--out", str(tmp_path / "api")])
    assert isinstance(result.exception, HeedfulError)
    assert str(result.exception).startswith(f"cannot reach {url}: ")
    assert "\n" not in str(result.exception)
