"""load_model: local folders, dtypes, devices, PEFT adapters and user errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM

from heedful import hardware
from heedful.errors import HeedfulError
from heedful.evaluate.config import EvalConfig
from heedful.hardware import cpu_capability, native_bf16
from heedful.models import ChoiceRequest, load_model, loading
from heedful.models.config import ModelConfig
from heedful.models.hf_causal import CausalBackend
from heedful.models.hf_seq2seq import Seq2SeqBackend
from heedful.models.loading import DTYPES, load_configured, parse_dtype, resolve_source, set_threads
from heedful.provenance import environment
from heedful.train.config import TrainConfig, TrainDataConfig

from .test_hf_causal import REQUESTS, encode_pair, reference_scores


def test_local_causal_folder_loads_as_causal_backend(llama_dir: Path) -> None:
    backend = load_model(str(llama_dir), threads=1)
    assert isinstance(backend, CausalBackend) and not backend.is_seq2seq
    assert backend.name == str(llama_dir)
    assert backend.max_length == 96  # max_position_embeddings of the tiny config
    assert backend.model.dtype == torch.float32 and backend.device.type == "cpu"
    [res] = backend.loglikelihoods(REQUESTS[:1])
    direct = AutoModelForCausalLM.from_pretrained(llama_dir).eval()
    logliks, _ = reference_scores(direct, backend.tokenizer, REQUESTS[0])
    np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)


def test_local_seq2seq_folder_loads_as_seq2seq_backend(t5_dir: Path) -> None:
    backend = load_model(str(t5_dir), dtype="bf16", threads=1)
    assert isinstance(backend, Seq2SeqBackend) and backend.is_seq2seq
    assert backend.model.dtype == torch.bfloat16
    assert backend.max_length == 64  # n_positions
    [res] = backend.loglikelihoods([ChoiceRequest("Is it", (" true", " false"))])
    assert all(np.isfinite(res.logliks))


def test_lora_adapter_is_applied(llama_dir: Path, tmp_path: Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    torch.manual_seed(1)
    # init_lora_weights=False gives a non-zero update, so the adapter changes the scores.
    lora = get_peft_model(
        base, LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "lora")
    backend = load_model(str(llama_dir), adapter=str(tmp_path / "lora"))
    assert isinstance(backend.model, PeftModel) and backend.shared_prefix
    results = backend.loglikelihoods(REQUESTS)
    plain = load_model(str(llama_dir)).loglikelihoods(REQUESTS)
    lora.eval()
    for req, res, base_res in zip(REQUESTS, results, plain):
        logliks, _ = reference_scores(lora, backend.tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)
        assert not np.allclose(res.logliks, base_res.logliks, atol=1e-3)


def test_prompt_tuning_adapter_scores_one_sequence_per_option(llama_dir: Path, tmp_path: Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    torch.manual_seed(2)
    tuned = get_peft_model(base, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3))
    tuned.save_pretrained(tmp_path / "prompt")
    backend = load_model(str(llama_dir), adapter=str(tmp_path / "prompt"))
    assert not backend.shared_prefix
    tuned.eval()
    req = REQUESTS[0]
    [res] = backend.loglikelihoods([req])
    for option, got in zip(req.continuations, res.logliks):
        ctx, cont = encode_pair(backend.tokenizer, req.context, option)
        ids = ctx + cont
        with torch.no_grad():
            logits = tuned(input_ids=torch.tensor([ids])).logits[0, -len(ids) :]
        logp = torch.log_softmax(logits.double(), dim=-1)
        assert got == pytest.approx(sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont)), abs=1e-5)


def test_unknown_name_lists_the_aliases() -> None:
    with pytest.raises(HeedfulError) as err:
        load_model("smollm3")
    message = str(err.value)
    assert "unknown model 'smollm3'" in message
    assert "smollm2-135m-instruct" in message and "gemma3-270m" in message


def test_paths_and_hub_ids_are_told_apart(tmp_path: Path) -> None:
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct") == ("HuggingFaceTB/SmolLM2-135M-Instruct", None)
    gguf = tmp_path / "model.Q4.gguf"
    gguf.write_bytes(b"")
    assert resolve_source(str(gguf)) == (str(tmp_path.resolve()), "model.Q4.gguf")
    with pytest.raises(HeedfulError, match="no such file"):
        resolve_source(str(tmp_path / "missing.gguf"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(HeedfulError, match="must be .gguf"):
        resolve_source(str(tmp_path / "weights.bin"))


def test_bad_options_are_user_errors(llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(HeedfulError, match="unknown dtype 'float8': use float32, .* or auto"):
        load_model(str(llama_dir), dtype="float8")
    with pytest.raises(HeedfulError, match="truncation must be one of"):
        load_model(str(llama_dir), truncation="right")
    with pytest.raises(HeedfulError, match="not a PEFT adapter folder"):
        load_model(str(llama_dir), adapter=str(tmp_path))
    with pytest.raises(HeedfulError, match="cannot load model config"):
        load_model(str(tmp_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is missing")
def test_cuda_without_gpu_is_a_clear_error(llama_dir: Path) -> None:
    with pytest.raises(HeedfulError, match="no CUDA GPU is available"):
        load_model(str(llama_dir), device="cuda")


@pytest.fixture()
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_from_option_then_environment_then_free_cores(monkeypatch, threads_restored) -> None:
    monkeypatch.setattr(loading, "free_cores", lambda: (2, 0.3))
    monkeypatch.setenv("HEEDFUL_THREADS", "1")
    assert set_threads(2) == 2 and torch.get_num_threads() == 2  # the option beats the environment
    assert set_threads(None) == 1 and torch.get_num_threads() == 1
    monkeypatch.delenv("HEEDFUL_THREADS")
    assert set_threads(None) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize(("option", "env", "message"), [
    (0, None, "model.threads must be at least 1, not 0"),
    (None, "two", "HEEDFUL_THREADS must be a whole number, not 'two'"),
    (None, "-1", "HEEDFUL_THREADS must be at least 1, not -1"),
])
def test_bad_thread_counts_are_one_line_errors(monkeypatch, threads_restored, option, env, message) -> None:
    if env is None:
        monkeypatch.delenv("HEEDFUL_THREADS", raising=False)
    else:
        monkeypatch.setenv("HEEDFUL_THREADS", env)
    with pytest.raises(HeedfulError) as err:
        set_threads(option)
    assert str(err.value) == message


def test_load_configured_passes_threads_and_resolves_auto(llama_dir: Path, monkeypatch, threads_restored) -> None:
    monkeypatch.setenv("HEEDFUL_THREADS", "1")
    monkeypatch.setattr(hardware, "cpu_capability", lambda: "AVX2")
    backend = load_configured(ModelConfig(name=str(llama_dir), dtype="auto", threads=2))
    assert backend.model.dtype == torch.float32 and torch.get_num_threads() == 2
    monkeypatch.setattr(hardware, "cpu_capability", lambda: "AVX512_BF16")
    backend = load_configured(ModelConfig(name=str(llama_dir), dtype="auto"))
    assert backend.model.dtype == torch.bfloat16 and torch.get_num_threads() == 1
    assert environment()["torch_threads"] == 1  # provenance records the count in use


@pytest.mark.parametrize(
    ("capability", "resolved"), [("AVX2", "float32"), ("AVX512", "float32"), ("AVX512_BF16", "bfloat16"), ("AMX", "bfloat16")]
)
def test_auto_dtype_resolves_by_native_bf16_and_shares_its_cache_identity(monkeypatch, capability, resolved) -> None:
    monkeypatch.setattr(hardware, "cpu_capability", lambda: capability)
    assert parse_dtype("auto") == DTYPES[resolved]
    auto, named = ModelConfig(dtype="auto"), ModelConfig(dtype=resolved)
    assert auto.identity() == named.identity() and auto.identity()["dtype"] == resolved
    other = "bfloat16" if resolved == "float32" else "float32"
    assert auto.identity() != ModelConfig(dtype=other).identity()
    # a model behind an API has no weights: its key keeps the option as given
    assert ModelConfig(name="openai:m", dtype="auto").identity()["dtype"] == "auto"


def test_auto_on_this_machine_shares_the_identity_of_what_it_loads() -> None:
    """No monkeypatching: whatever this CPU is, auto keys as the dtype that loading picks."""
    resolved = next(name for name in ("float32", "bfloat16") if DTYPES[name] == parse_dtype("auto"))
    assert ModelConfig(dtype="auto").identity() == ModelConfig(dtype=resolved).identity()
    assert (resolved == "bfloat16") == native_bf16("cpu")


def test_threads_change_neither_cache_keys_nor_run_ids() -> None:
    assert ModelConfig(threads=3).identity() == ModelConfig().identity()
    assert EvalConfig(model=ModelConfig(threads=3)).identity() == EvalConfig().identity()
    train = TrainConfig(data=TrainDataConfig(tasks="jsonl:x.jsonl"))
    assert dataclasses.replace(train, model=ModelConfig(threads=3)).identity() == train.identity()
    assert EvalConfig(model=ModelConfig(dtype="auto")).identity() != EvalConfig().identity()  # the option as given


def test_provenance_records_the_cpus_bf16_capability() -> None:
    env = environment()
    assert env["cpu_capability"] == cpu_capability()
    assert env["native_bf16"] == (env["cpu_capability"] in ("AMX", "AVX512_BF16"))


def _greedy_by_full_forward(model, ids: list[int], max_new_tokens: int) -> list[int]:
    """The adapter's own forward pass (virtual tokens included), once per new token."""
    new: list[int] = []
    for _ in range(max_new_tokens):
        with torch.no_grad():
            new.append(int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax()))
    return new


@pytest.mark.parametrize("config", [
    PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4),
    PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3),
], ids=["prefix", "prompt"])
def test_prompt_learning_adapters_generate_with_their_virtual_tokens(llama_dir: Path, tmp_path: Path, config) -> None:
    """transformers 5.24's generate drops a prefix adapter's virtual tokens; heedful's greedy path must not."""
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    tuned = get_peft_model(base, config)
    torch.manual_seed(3)
    with torch.no_grad():
        for param in tuned.prompt_encoder.parameters():
            param.normal_(0, 3.0)  # far from the base model, so a dropped prefix shows
    tuned.save_pretrained(tmp_path / "adapter")
    backend = load_model(str(llama_dir), adapter=str(tmp_path / "adapter"))
    tuned.eval()
    prompts = ["Q: Which of the following is a fruit? A:", "The answer is"]
    got = backend.generate(prompts, max_new_tokens=6, batch_size=2)
    for prompt, text in zip(prompts, got):
        ids = backend.encoder.encode(prompt)
        expected = _greedy_by_full_forward(tuned, ids, 6)
        eos = backend.eos_ids
        cut = next((k for k, t in enumerate(expected) if t in eos), len(expected))
        assert text == backend.tokenizer.decode(expected[:cut], skip_special_tokens=True)
    plain = load_model(str(llama_dir)).generate(prompts, max_new_tokens=6, batch_size=2)
    assert got != plain
