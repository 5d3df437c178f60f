"""Shared fixtures: tiny random models with a real (trained byte-level BPE) tokenizer, built
once per session, and the location of the shared reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from heedful.models.hf_causal import CausalBackend
from heedful.models.hf_seq2seq import Seq2SeqBackend
from shared_data import SHARED_DATA

torch.set_num_threads(1)
os.environ.setdefault("HEEDFUL_THREADS", "1")  # else load_model takes the free cores (and so do CLI subprocesses)

REPO_ROOT = Path(__file__).resolve().parents[1]

CORPUS = [
    "Q: Which of the following is a fruit? choice: apple choice: chair choice: river A: apple",
    "In this task, you are given a question and you have to pick the correct option.",
    "The quick brown fox jumps over the lazy dog. The answer is yes, the answer is no.",
    "Definition: Classify the sentence as positive or negative. Input: I loved it. Output: positive",
    "Is the following statement true or false? Water boils at 100 degrees. Answer: true",
    "Pick one category for the following text. The options are sports, politics, science.",
    "Translate the sentence into French. Output: Le chat est noir. Options: A. B. C. D.",
]
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def _train_tokenizer(post: str | None) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    if post == "eos":  # T5 style: append </s>
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    elif post == "bos":  # Gemma/LLaMA style: prepend <s>
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="session")
def causal_tokenizer() -> PreTrainedTokenizerFast:
    return _train_tokenizer(None)


@pytest.fixture(scope="session")
def bos_tokenizer() -> PreTrainedTokenizerFast:
    return _train_tokenizer("bos")


@pytest.fixture(scope="session")
def t5_tokenizer() -> PreTrainedTokenizerFast:
    return _train_tokenizer("eos")


def make_tiny_llama(vocab_size: int, seed: int = 0, max_position_embeddings: int = 96) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        # Wider init than the default 0.02 so greedy argmaxes are far from ties.
        initializer_range=0.2,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def make_tiny_t5(vocab_size: int, seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        n_positions=64,
        initializer_factor=1.0,
        pad_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=0,
    )
    return T5ForConditionalGeneration(config).eval()


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory, causal_tokenizer: PreTrainedTokenizerFast) -> Path:
    """A saved tiny causal checkpoint (model + tokenizer), loadable by ``load_model``."""
    path = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_llama(len(causal_tokenizer)).save_pretrained(path)
    causal_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory: pytest.TempPathFactory, t5_tokenizer: PreTrainedTokenizerFast) -> Path:
    path = tmp_path_factory.mktemp("tiny-t5")
    make_tiny_t5(len(t5_tokenizer)).save_pretrained(path)
    t5_tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def causal(causal_tokenizer: PreTrainedTokenizerFast) -> CausalBackend:
    return CausalBackend(make_tiny_llama(len(causal_tokenizer)), causal_tokenizer, name="tiny-llama")


@pytest.fixture()
def seq2seq(t5_tokenizer: PreTrainedTokenizerFast) -> Seq2SeqBackend:
    return Seq2SeqBackend(make_tiny_t5(len(t5_tokenizer)), t5_tokenizer, name="tiny-t5")


@pytest.fixture(scope="session")
def tiny_llama():
    """Factory ``tiny_llama(vocab_size, seed=0)`` of fresh tiny random Llama models."""
    return make_tiny_llama


@pytest.fixture(scope="session")
def tiny_t5():
    """Factory ``tiny_t5(vocab_size, seed=0)`` of fresh tiny random T5 models."""
    return make_tiny_t5


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, causal_tokenizer: PreTrainedTokenizerFast) -> Path:
    """A saved tiny causal checkpoint with a 512-token context, for end-to-end runs."""
    path = tmp_path_factory.mktemp("tiny-llama-512")
    make_tiny_llama(len(causal_tokenizer), max_position_embeddings=512).save_pretrained(path)
    causal_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA
