"""lm-evaluation-harness tokenisation of (context, continuation) pairs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from heedful.errors import HeedfulError
from heedful.models.encoding import PairEncoder, move_trailing_whitespace, needs_bos


def test_trailing_whitespace_moves_to_continuation() -> None:
    assert move_trailing_whitespace("Answer: ", "yes") == ("Answer:", " yes")
    assert move_trailing_whitespace("Answer:\n \t", "yes") == ("Answer:", "\n \tyes")
    assert move_trailing_whitespace("Answer:", " yes") == ("Answer:", " yes")


def test_causal_pair_is_slice_of_whole(causal_tokenizer) -> None:
    enc = PairEncoder(causal_tokenizer, seq2seq=False, add_bos=False)
    ctx, cont = enc.encode_pair("The answer is ", "yes")
    whole = causal_tokenizer.encode("The answer is yes", add_special_tokens=False)
    assert ctx == causal_tokenizer.encode("The answer is", add_special_tokens=False)
    assert cont == whole[len(ctx) :]
    # The space travels with the continuation, as in running text ("Ġ" marks a space).
    assert causal_tokenizer.convert_ids_to_tokens(cont)[0].startswith("Ġ")


def test_context_with_and_without_space_score_same_tokens(causal_tokenizer) -> None:
    enc = PairEncoder(causal_tokenizer, seq2seq=False, add_bos=False)
    assert enc.encode_pair("The answer is ", "yes") == enc.encode_pair("The answer is", " yes")


def test_empty_context_uses_prefix_token(causal_tokenizer) -> None:
    enc = PairEncoder(causal_tokenizer, seq2seq=False, add_bos=False)
    ctx, cont = enc.encode_pair("", "apple")
    assert ctx == [causal_tokenizer.bos_token_id]
    assert cont == causal_tokenizer.encode("apple", add_special_tokens=False)


def test_seq2seq_context_keeps_eos_continuation_has_none(t5_tokenizer) -> None:
    enc = PairEncoder(t5_tokenizer, seq2seq=True, add_bos=False)
    ctx, cont = enc.encode_pair("Is it true? ", "yes")
    assert ctx[-1] == t5_tokenizer.eos_token_id
    assert ctx == t5_tokenizer.encode("Is it true?")
    assert cont == t5_tokenizer.encode(" yes", add_special_tokens=False)
    assert t5_tokenizer.eos_token_id not in cont


def test_bos_added_only_when_model_needs_it(bos_tokenizer) -> None:
    plain = PairEncoder(bos_tokenizer, seq2seq=False, add_bos=False)
    with_bos = PairEncoder(bos_tokenizer, seq2seq=False, add_bos=True)
    ctx_plain, cont_plain = plain.encode_pair("Is it", " true")
    ctx_bos, cont_bos = with_bos.encode_pair("Is it", " true")
    assert ctx_bos == [bos_tokenizer.bos_token_id] + ctx_plain
    assert cont_bos == cont_plain
    # A prompt that already starts with the BOS text (chat templates) gets no second one.
    ids = with_bos.encode("<s>Is it")
    assert ids == bos_tokenizer.encode("<s>Is it", add_special_tokens=False)
    assert ids.count(bos_tokenizer.bos_token_id) == 1


def test_needs_bos_follows_lm_eval_gemma_rule() -> None:
    assert needs_bos(SimpleNamespace(model_type="gemma3_text"))
    assert not needs_bos(SimpleNamespace(model_type="llama"))


def test_request_errors_name_request_and_option(causal_tokenizer) -> None:
    enc = PairEncoder(causal_tokenizer, seq2seq=False, add_bos=False)
    with pytest.raises(HeedfulError, match="request 4: option 1"):
        enc.encode_request("Is it", (" true", ""), "request 4")
    with pytest.raises(HeedfulError, match="request 2: no options"):
        enc.encode_request("Is it", (), "request 2")


def test_option_ids_drop_leading_bos_keep_eos(bos_tokenizer, t5_tokenizer) -> None:
    llama_like = PairEncoder(bos_tokenizer, seq2seq=False, add_bos=False)
    assert llama_like.option_ids("yes") == bos_tokenizer.encode("yes", add_special_tokens=False)
    t5_like = PairEncoder(t5_tokenizer, seq2seq=True, add_bos=False)
    assert t5_like.option_ids("yes")[-1] == t5_tokenizer.eos_token_id
