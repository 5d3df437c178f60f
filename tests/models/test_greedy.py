"""heedful's batched greedy loop (models/greedy.py) against plain ``model.generate`` on a tiny random Llama.

The reference is transformers' own greedy search on the same left-padded batch with only
EOS to stop it; stop strings are applied to its output afterwards. heedful's loop stops
each row on the fly and drops it from the batch, and must give the same tokens and text.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig

from heedful.models.greedy import greedy_decode
from heedful.models.hf_causal import CausalBackend
from heedful.models.stops import cut_at_stop

# Different lengths, so the batch is left-padded.
PROMPTS = [
    "Q: Which of the following is a fruit? choice: apple choice: chair A:",
    "The quick brown fox",
    "Is it",
    "Definition: Classify the sentence as positive or negative. Input: I loved it. Output:",
    "Translate the sentence into French.",
    "Pick one category for the following text.",
]
MAX_NEW = 12


def reference_generate(model, rows: list[list[int]], max_new_tokens: int, eos: list[int], pad: int):
    """Plain ``model.generate`` greedy search on the left-padded batch; new tokens (cut after EOS) and scores."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad,
        eos_token_id=eos,
        return_dict_in_generate=True,
        output_scores=True,
    )
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    tokens = []
    for row in out.sequences[:, width:].tolist():
        end = next((k + 1 for k, t in enumerate(row) if t in eos), len(row))
        tokens.append(row[:end])
    return tokens, out.scores


def first_stop_step(tokenizer, tokens: list[int], stops: list[str]) -> int | None:
    """How many tokens it takes for a stop string to appear after the answer's first non-space character."""
    for k in range(1, len(tokens) + 1):
        text = tokenizer.decode(tokens[:k], skip_special_tokens=True).lstrip()
        if any(s in text for s in stops):
            return k
    return None


def ascii_pair(text: str, start: int) -> str:
    """The first two adjacent printable ASCII characters (neither a space) at or after ``start``."""
    for k in range(start, len(text) - 1):
        pair = text[k : k + 2]
        if pair.isascii() and pair.isprintable() and " " not in pair:
            return pair
    raise AssertionError(f"no ASCII pair in {text!r}")


@pytest.fixture()
def case(causal: CausalBackend):
    """The backend with a second EOS token and stop strings chosen from the free outputs, so that
    rows end by EOS, by stop strings at different steps, and by ``max_new_tokens``."""
    tok, model = causal.tokenizer, causal.model
    rows = [tok.encode(p, add_special_tokens=False) for p in PROMPTS]
    free, _ = reference_generate(model, rows, MAX_NEW, [tok.eos_token_id], causal.pad_id)
    # A token the model really emits, made an EOS token through the generation config.
    extra = free[3][6]
    model.generation_config.eos_token_id = [tok.eos_token_id, extra]
    eos = sorted(causal.eos_ids)
    assert eos == sorted({tok.eos_token_id, extra})
    ref, scores = reference_generate(model, rows, MAX_NEW, eos, causal.pad_id)
    open_rows = [j for j, r in enumerate(ref) if r[-1] not in eos]
    texts = [tok.decode(ref[j], skip_special_tokens=True).lstrip() for j in open_rows]
    stops = [ascii_pair(texts[0], 2), ascii_pair(texts[1], 6)]
    ends = {}
    for j, r in enumerate(ref):
        step = first_stop_step(tok, r, stops)
        ends[j] = ("stop", step) if step is not None else ("eos", len(r)) if r[-1] in eos else ("length", len(r))
    # Preconditions: every way of ending occurs, stop strings at two different steps.
    assert {kind for kind, _ in ends.values()} == {"eos", "stop", "length"}, ends
    assert len({step for kind, step in ends.values() if kind == "stop"}) >= 2, ends
    return causal, rows, ref, scores, stops, ends


def test_loop_gives_generates_tokens_cut_where_each_row_stops(case) -> None:
    causal, rows, ref, _, stops, ends = case
    tokens, _ = causal._greedy(rows, MAX_NEW, stops)
    for j, (got, want) in enumerate(zip(tokens, ref)):
        assert got == want[: ends[j][1]], (j, ends[j])


def test_generate_text_equals_plain_generate_then_stop_strings(case) -> None:
    causal, rows, ref, _, stops, _ = case
    tok, eos = causal.tokenizer, causal.eos_ids
    # EOS tokens are not text (the extra one here is an ordinary token).
    expected = [cut_at_stop(tok.decode([t for t in r if t not in eos], skip_special_tokens=True), stops) for r in ref]
    assert causal.generate(PROMPTS, max_new_tokens=MAX_NEW, stop=stops, batch_size=len(PROMPTS)) == expected
    # Smaller batches, one unpadded: the same text.
    assert causal.generate(PROMPTS, max_new_tokens=MAX_NEW, stop=stops, batch_size=1) == expected
    assert causal.generate(PROMPTS, max_new_tokens=MAX_NEW, stop=stops, batch_size=4) == expected
    # transformers' generate with the on-the-fly StoppingCriteria (the path kept for models
    # without a reusable cache) agrees as well.
    causal._cache_keyword = None
    assert causal.generate(PROMPTS, max_new_tokens=MAX_NEW, stop=stops, batch_size=len(PROMPTS)) == expected


def test_step_scores_are_generates_while_a_row_decodes(case) -> None:
    causal, rows, ref, scores, _, _ = case
    tokens, got = causal._greedy(rows, MAX_NEW, scores=True)
    assert tokens == ref
    assert got is not None and len(got) == len(scores) == max(len(r) for r in ref)
    for k, (mine, theirs) in enumerate(zip(got, scores)):
        assert mine.dtype == torch.float32 and mine.shape == theirs.shape
        for j, r in enumerate(ref):
            if k < len(r):
                torch.testing.assert_close(mine[j], theirs[j], atol=1e-5, rtol=1e-5)
            else:  # the row had left the batch
                assert not mine[j].any()


def test_each_row_leaves_the_batch_when_it_stops(case) -> None:
    causal, rows, _, _, stops, ends = case
    seen: list[tuple[int, int, int]] = []

    def record(module, args, kwargs, out):
        seen.append((kwargs["input_ids"].shape[0], kwargs["input_ids"].shape[1], out.logits.shape[1]))

    handle = causal.model.register_forward_hook(record, with_kwargs=True)
    try:
        causal._greedy(rows, MAX_NEW, stops)
    finally:
        handle.remove()
    lengths = [step for _, step in ends.values()]
    # One prefill over the padded prompts, then one token per row still decoding.
    assert seen[0][:2] == (len(rows), max(len(r) for r in rows))
    assert [(b, t) for b, t, _ in seen[1:]] == [(sum(n > k for n in lengths), 1) for k in range(1, max(lengths))]
    # Only the last position's logits are computed (logits_to_keep=1).
    assert causal._logits_to_keep and all(kept == 1 for _, _, kept in seen)


def test_no_tokens_asked_or_no_rows(causal: CausalBackend) -> None:
    rows = [causal.tokenizer.encode("Is it", add_special_tokens=False)]
    kw = dict(pad_id=causal.pad_id, eos_ids=causal.eos_ids, cache_keyword=causal._cache_keyword)
    assert greedy_decode(causal.model, rows, max_new_tokens=0, scores=True, **kw) == ([[]], ())
    assert greedy_decode(causal.model, [], max_new_tokens=5, **kw) == ([], None)
    assert causal.generate(["Is it", "The quick"], max_new_tokens=0) == ["", ""]


def test_a_lora_adapter_decodes_on_its_cache_as_generate_does(causal_tokenizer, tiny_llama) -> None:
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    tuned = get_peft_model(tiny_llama(len(causal_tokenizer)), config).eval()
    backend = CausalBackend(tuned, causal_tokenizer, name="tiny-llama+lora")
    assert backend._cache_keyword is not None  # heedful's loop, not generate
    rows = [causal_tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]
    eos = sorted(backend.eos_ids)
    ref, _ = reference_generate(tuned, rows, MAX_NEW, eos, backend.pad_id)
    # The same base weights (seed 0) without the adapter decode otherwise: the adapter is read.
    plain, _ = reference_generate(tiny_llama(len(causal_tokenizer)), rows, MAX_NEW, eos, backend.pad_id)
    assert backend._greedy(rows, MAX_NEW)[0] == ref != plain
