"""The OpenAI-API backend against a local OpenAI-compatible server running a tiny real model.

The same model scored and decoded in-process (:class:`CausalBackend`) is the reference:
equal log-likelihoods validate the echo parsing end to end, equal texts the generation
and its stop rule. Failures (down, rate-limited, malformed, halfway) end in one line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import socket
import sqlite3

import pytest
import torch

from heedful.errors import HeedfulError
from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.models import ChoiceRequest
from heedful.models.config import ModelConfig
from heedful.models.hf_causal import CausalBackend
from heedful.models.loading import load_configured, load_model
from heedful.models.openai_api import OpenAIBackend, echo_scores
from heedful.tasks.config import DataConfig
from openai_server import TinyOpenAIServer

REQUESTS = [
    ChoiceRequest("Q: Which of the following is a fruit? A:", (" apple", " chair", " river of the lazy dog")),
    ChoiceRequest("The answer is ", ("yes", "no")),  # trailing space: moves to the options
    ChoiceRequest("Is the following statement true or false? Water boils.\nAnswer:", (" true", " false")),
    ChoiceRequest("Pick one category", (" sports", " politics", " science", " quick brown fox")),
    ChoiceRequest("Translate", (" Le chat est noir.",)),
]
# the last two: the tiny models' answers to them start with a space (one with, one without BOS)
PROMPTS = [r.context for r in REQUESTS] + [
    "Definition: Classify the sentence.", "Output:", "In this task, you are given a question."
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(params=["bos", "no-bos"])
def pair(request, bos_tokenizer, causal_tokenizer, tiny_llama):
    """(local backend, served model) on one tiny model: a BOS-adding tokenizer (as vLLM serves Llama) or none."""
    tokenizer = bos_tokenizer if request.param == "bos" else causal_tokenizer
    model = tiny_llama(len(tokenizer))
    local = CausalBackend(model, tokenizer, name="tiny", add_bos=request.param == "bos")
    with TinyOpenAIServer(model, tokenizer) as server:
        yield local, server


@pytest.fixture
def served(causal_tokenizer, tiny_llama):
    """A factory: ``served(**failures)`` -> a started server on a fresh tiny model (stopped after the test)."""
    started = []

    def start(**failures):
        server = TinyOpenAIServer(tiny_llama(len(causal_tokenizer)), causal_tokenizer, **failures).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


def greedy_option(local: CausalBackend, context: str) -> str:
    """The text of the token the model would generate after ``context`` (checked to round-trip)."""
    ctx = local.encoder.encode(context)
    with torch.no_grad():
        token = int(local.model(torch.tensor([ctx])).logits[0, -1].argmax())
    text = local.tokenizer.decode([token])
    assert local.encoder.encode_pair(context, text)[1] == [token], "precondition: the token round-trips"
    return text


def test_loglikelihoods_over_the_api_equal_the_local_backend(pair):
    local, server = pair
    context = "Q: Which of the following is a fruit? A:"
    requests = [*REQUESTS, ChoiceRequest(context, (greedy_option(local, context), " chair"))]
    seen: list[int] = []
    remote = OpenAIBackend("tiny", base_url=server.url).loglikelihoods(requests, batch_size=3, progress=seen.append)
    reference = local.loglikelihoods(requests)
    for got, want in zip(remote, reference, strict=True):
        assert got.logliks == pytest.approx(want.logliks, abs=1e-4)
        assert got.n_tokens == want.n_tokens
        assert got.is_greedy == want.is_greedy
        assert got.n_chars == want.n_chars
    assert remote[-1].is_greedy == (True, False)
    assert sum(seen) == len(requests)
    # one echo request per option, each asking for prompt log-probabilities
    assert len(server.received) == sum(len(r.continuations) for r in requests)
    path, body = server.received[0]
    assert path == "/v1/completions" and body["echo"] is True and body["logprobs"] == 1 and body["temperature"] == 0


def test_generation_over_the_api_equals_local_greedy(pair):
    local, server = pair
    backend = OpenAIBackend("tiny", base_url=server.url)
    assert backend.generate(PROMPTS, max_new_tokens=8, batch_size=3) == local.generate(PROMPTS, max_new_tokens=8)
    # A stop string before the answer begins must not end it (the local rule): answers that
    # start with a space, stopped at " ", are asked again without stop strings.
    plain = local.generate(PROMPTS, max_new_tokens=8)
    for stop in (["\n"], [" "], ["e", "a"]):
        before = len(server.received)
        expected = local.generate(PROMPTS, max_new_tokens=8, stop=stop)
        assert backend.generate(PROMPTS, max_new_tokens=8, stop=stop) == expected
        bodies = [body for _, body in server.received[before:]]
        asked_again = [body for body in bodies if "stop" not in body]
        assert len(bodies) == len(PROMPTS) + len(asked_again)
        if stop == [" "]:  # asked again: the answers blank before their first space
            assert len(asked_again) == sum(" " in text and not text.split(" ")[0].strip() for text in plain) > 0


def test_chat_generation_uses_the_servers_template(tmp_path, causal_tokenizer, tiny_llama):
    chat_tokenizer = copy.deepcopy(causal_tokenizer)  # the session's tokenizer stays without a template
    chat_tokenizer.chat_template = CHAT_TEMPLATE
    model = tiny_llama(len(chat_tokenizer))
    local = CausalBackend(model, chat_tokenizer, name="tiny")
    wrapped = [
        chat_tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in PROMPTS
    ]
    with TinyOpenAIServer(model, chat_tokenizer) as server:
        backend = OpenAIBackend("tiny", base_url=server.url, chat=True)
        assert backend.generate(PROMPTS, max_new_tokens=6) == local.generate(wrapped, max_new_tokens=6)
        assert {path for path, _ in server.received} == {"/v1/chat/completions"}
        messages = [body["messages"] for _, body in server.received]
        assert sorted(messages, key=str) == sorted(([{"role": "user", "content": p}] for p in PROMPTS), key=str)
        with pytest.raises(HeedfulError, match="chat completions return no prompt log-probabilities"):
            backend.loglikelihoods(REQUESTS[:1])
        # An evaluation leaves the prompts unwrapped: the server applies the template.
        tasks = tmp_path / "open.jsonl"
        tasks.write_text("".join(json.dumps({"task": "echo", "id": f"e{i}", "input": p, "output": "x"}) + "\n"
                                 for i, p in enumerate(PROMPTS)))
        server.received.clear()
        config = EvalConfig(model=ModelConfig(name="openai:tiny", base_url=server.url, chat=True),
                            data=DataConfig(tasks=f"jsonl:{tasks}"), scoring=ScoringConfig(max_new_tokens=6, stop=[]),
                            out=str(tmp_path / "run"))
        records = evaluate(config, backend=backend, show_progress=False).records
        assert sorted(body["messages"][0]["content"] for _, body in server.received) == sorted(PROMPTS)
        answers = dict(zip(PROMPTS, local.generate(wrapped, max_new_tokens=6)))
        assert [r.prediction for r in records] == [answers[r.prompt].strip() for r in records]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_server_that_is_down_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend("tiny", base_url=url, max_retries=1)
    with pytest.raises(HeedfulError, match=rf"^cannot reach {url}: .*refused"):
        backend.generate(["hello"], max_new_tokens=2)


def test_rate_limits_are_retried_until_an_answer(served):
    server = served(rate_limited=2)
    backend = OpenAIBackend("tiny", base_url=server.url)
    healthy = served()
    expected = OpenAIBackend("tiny", base_url=healthy.url).generate(["Translate"], max_new_tokens=4)
    assert backend.generate(["Translate"], max_new_tokens=4) == expected
    assert len(server.received) == 3 and server.answered == 1
    # retries run out: one line with the status
    stubborn = served(rate_limited=100)
    with pytest.raises(HeedfulError, match=r"answered 429 for model tiny: rate limited"):
        OpenAIBackend("tiny", base_url=stubborn.url, max_retries=2).generate(["Translate"], max_new_tokens=4)
    assert len(stubborn.received) == 3


MALFORMED = "returned a malformed reply"


@pytest.mark.parametrize(("body", "scoring_error"), [
    (b"<html>not json", MALFORMED),
    (b'{"choices": []}', MALFORMED),
    (b'{"choices": [{"text": null}]}', "rank classification needs prompt log-probabilities"),  # no logprobs either
])
def test_a_malformed_reply_is_one_clear_error(served, body, scoring_error):
    backend = OpenAIBackend("tiny", base_url=served(malformed=body).url, max_retries=0)
    with pytest.raises(HeedfulError, match=MALFORMED):
        backend.generate(["Translate"], max_new_tokens=4)
    with pytest.raises(HeedfulError, match=scoring_error):
        backend.loglikelihoods(REQUESTS[:1])


def test_a_server_without_prompt_logprobs_still_generates(served):
    backend = OpenAIBackend("tiny", base_url=served(no_logprobs=True).url)
    with pytest.raises(HeedfulError, match=r"rank classification needs prompt log-probabilities .*Generation .* works"):
        backend.loglikelihoods(REQUESTS[:2])
    assert len(backend.generate(["Translate"], max_new_tokens=3)) == 1


def test_echo_offsets_are_read_from_the_prompts_end():
    # vLLM's offsets count the BOS text "<s>": the option " yes" starts at 13 + 3, not 13.
    tokens = ["<s>", "The", " answer", " is", " yes", "!"]
    logprobs = [None, -1.0, -2.0, -3.0, -0.5, -9.0]
    tops = [None, {"The": -1.0}, {" x": -1.5}, {" is": -3.0}, {" yes": -0.5}, {"!": -9.0}]
    offsets = [0, 3, 6, 13, 16, 20]
    assert echo_scores(tokens, logprobs, offsets, tops, n_prompt=5, n_chars=4) == (-0.5, 1, True)
    assert echo_scores(tokens, logprobs, offsets, tops, n_prompt=None, n_chars=7) == (-3.5, 2, True)
    # the generated token "!" is never scored; without usage one generated token is assumed (lm-eval)
    assert echo_scores(tokens, logprobs, offsets, tops, n_prompt=5, n_chars=14) == (-5.5, 3, False)
    with pytest.raises(ValueError, match="no token of its own"):
        echo_scores(tokens, logprobs, offsets, tops, n_prompt=5, n_chars=2)
    with pytest.raises(ValueError, match="no log-probability"):
        echo_scores(tokens, logprobs, offsets, tops, n_prompt=5, n_chars=20)


def write_inputs(folder, n: int = 12):
    """Two-option tasks and a one-instruction collection (JSONL)."""
    tasks = folder / "tasks.jsonl"
    rows = [{"task": "colors", "id": f"c{i}", "input": f"Is item {i} red or blue?", "options": ["red", "blue"],
             "gold": i % 2} for i in range(n)]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tasks


def test_a_failure_halfway_keeps_finished_answers_and_a_rerun_asks_only_the_rest(tmp_path, served):
    server = served(fail_after=8)  # 8 requests = the first chunk of 4 two-option prompts
    tasks = write_inputs(tmp_path)
    config = EvalConfig(
        model=ModelConfig(name="openai:tiny", base_url=server.url),
        data=DataConfig(tasks=f"jsonl:{tasks}"),
        scoring=ScoringConfig(batch_size=2),
        out=str(tmp_path / "run"),
    )
    backend = OpenAIBackend("tiny", base_url=server.url, max_retries=0)
    with pytest.raises(HeedfulError, match=r"answered 500 for model tiny: the model crashed"):
        evaluate(config, backend=backend, show_progress=False, chunk_size=4)
    with sqlite3.connect(tmp_path / "run" / "heedful.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0] == 4
    server.fail_after = None
    server.received.clear()
    resumed = evaluate(config, backend=backend, show_progress=False, chunk_size=4)
    assert resumed.computed == 8 and len(server.received) == 16  # only the 8 unanswered prompts, 2 options each
    fresh = evaluate(dataclasses.replace(config, out=str(tmp_path / "fresh")), backend=backend, show_progress=False)
    assert fresh.computed == 12
    assert (tmp_path / "run" / "records.jsonl").read_text() == (tmp_path / "fresh" / "records.jsonl").read_text()


def test_the_weights_and_hidden_states_are_not_available(served):
    url = served().url
    backend = load_configured(ModelConfig(name="openai:tiny", base_url=url))
    assert isinstance(backend, OpenAIBackend) and backend.name == "openai:tiny"
    with pytest.raises(HeedfulError, match="hidden states are not available"):
        backend.first_token_hidden_states(["x"])
    with pytest.raises(HeedfulError, match=r"--scoring.rank sun"):
        backend.option_probabilities_after_generation(REQUESTS[:1])
    with pytest.raises(HeedfulError, match="runs behind an API: it has no local tokenizer"):
        getattr(backend.tokenizer, "chat_template", None)  # a paraphrasing or chat-wrapping caller
    with pytest.raises(HeedfulError, match="no weights to load here"):
        load_model("openai:tiny")  # training loads weights this way
    with pytest.raises(HeedfulError, match="model.base_url is for a model behind an API"):
        load_configured(ModelConfig(name="some/model", base_url=url))
    with pytest.raises(HeedfulError, match="model.adapter"):
        load_configured(ModelConfig(name="openai:tiny", base_url=url, adapter="a"))


def test_cached_outputs_are_keyed_by_server():
    local = ModelConfig(name="m")
    assert "base_url" not in local.identity() and "chat" not in local.identity()  # local keys unchanged
    a = ModelConfig(name="openai:m", base_url="http://a/v1")
    assert a.identity() != ModelConfig(name="openai:m", base_url="http://b/v1").identity()
    assert a.identity() != ModelConfig(name="openai:m", base_url="http://a/v1", chat=True).identity()
