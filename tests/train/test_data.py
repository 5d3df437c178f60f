from __future__ import annotations

import torch

from heedful.prompts.superni import encode
from heedful.tasks.sampling import select_instances
from heedful.train.data import (
    IGNORE_INDEX,
    Collator,
    TrainExample,
    example_length,
    length_grouped_batches,
    render_examples,
    tokenize_example,
)

EXAMPLE = TrainExample("t", "t-0", "Definition: Say yes.\n\nNow complete the following example -\nInput: x.\nOutput: ", "yes")


def test_causal_labels_cover_target_and_eos_only(causal_tokenizer):
    f = tokenize_example(EXAMPLE, causal_tokenizer, is_seq2seq=False)
    source = causal_tokenizer(EXAMPLE.source, add_special_tokens=False)["input_ids"]
    target = causal_tokenizer(EXAMPLE.target, add_special_tokens=False)["input_ids"]
    assert f.input_ids == source + target + [causal_tokenizer.eos_token_id]
    assert f.labels == [IGNORE_INDEX] * len(source) + target + [causal_tokenizer.eos_token_id]


def test_causal_source_truncation_keeps_the_end(causal_tokenizer):
    f = tokenize_example(EXAMPLE, causal_tokenizer, is_seq2seq=False, max_source_length=5, max_target_length=2)
    source = causal_tokenizer(EXAMPLE.source, add_special_tokens=False)["input_ids"]
    assert f.input_ids[:5] == source[-5:]
    assert len(f.input_ids) == 5 + 2 and f.labels[-1] == causal_tokenizer.eos_token_id


def test_seq2seq_labels_are_the_target(t5_tokenizer):
    f = tokenize_example(EXAMPLE, t5_tokenizer, is_seq2seq=True)
    assert f.input_ids == t5_tokenizer(EXAMPLE.source)["input_ids"]
    assert f.labels == t5_tokenizer(EXAMPLE.target, add_special_tokens=False)["input_ids"] + [t5_tokenizer.eos_token_id]
    assert example_length(f, True) == len(f.input_ids) + len(f.labels)


def test_render_uses_the_encoding_and_first_reference(tasks):
    task = tasks[0]
    chosen = select_instances(task, "train", 3, seed=1)
    examples = render_examples(task, chosen, "def+pos2")
    assert [e.instance_id for e in examples] == [i.id for i in chosen]
    assert examples[0].source == encode(task, chosen[0].input, "def+pos2")
    assert examples[0].target == chosen[0].references[0]
    bare = render_examples(task, chosen, "none")
    assert "Definition" not in bare[0].source and bare[0].source.endswith("Output: ")


def test_render_applies_the_task_transform(tasks):
    import dataclasses

    task = tasks[0]
    chosen = select_instances(task, "train", 1)
    examples = render_examples(task, chosen, "def", transform=lambda t: dataclasses.replace(t, definition="Answer."))
    assert examples[0].source.startswith("Definition: Answer.")


def test_collator_pads_dynamically(causal_tokenizer, t5_tokenizer):
    a = tokenize_example(EXAMPLE, causal_tokenizer, is_seq2seq=False)
    b = tokenize_example(TrainExample("t", "1", "Input: y. Output: ", "no way"), causal_tokenizer, is_seq2seq=False)
    batch = Collator(pad_token_id=0, is_seq2seq=False)([a, b])
    width = max(len(a.input_ids), len(b.input_ids))
    assert batch["input_ids"].shape == (2, width) == batch["labels"].shape
    assert batch["attention_mask"][1].sum() == len(b.input_ids)
    assert torch.all(batch["labels"][1, len(b.input_ids) :] == IGNORE_INDEX)
    s = tokenize_example(EXAMPLE, t5_tokenizer, is_seq2seq=True)
    seq = Collator(pad_token_id=0, is_seq2seq=True)([s, s])
    assert seq["labels"].shape == (2, len(s.labels))


def test_length_grouped_batches_are_a_seeded_permutation():
    lengths = [(i * 37) % 101 for i in range(230)]
    one = length_grouped_batches(lengths, 8, seed=3, epoch=0, mega_factor=4)
    assert one == length_grouped_batches(lengths, 8, seed=3, epoch=0, mega_factor=4)
    assert one != length_grouped_batches(lengths, 8, seed=3, epoch=1, mega_factor=4)
    assert sorted(i for b in one for i in b) == list(range(230))
    grouped_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in one)
    plain = length_grouped_batches(lengths, 8, seed=3, epoch=0, group=False)
    plain_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain)
    assert grouped_spread < plain_spread / 2


def test_instruction_groups_render_like_evaluation_with_the_reference_first(tasks):
    from heedful.prompts.builtin import encoding_instruction
    from heedful.prompts.demos import continuation_strings
    from heedful.prompts.render import render_instruction
    from heedful.train.data import flatten_groups, render_instruction_groups

    task = tasks[0]
    instances = select_instances(task, "train", 3, seed=0)
    instructions = [encoding_instruction(task, "def+pos2"), encoding_instruction(task, "none")]
    grouped = render_instruction_groups(task, instances, instructions)
    assert len(grouped) == 3
    for inst, group in zip(instances, grouped):
        assert [e.instruction_id for e in group] == [i.id for i in instructions]
        assert {e.target for e in group} == {inst.references[0]} and {e.instance_id for e in group} == {inst.id}
        for instruction, example in zip(instructions, group):
            rendered = render_instruction(instruction, task, inst)
            assert example.source == rendered.prompt
            assert example.target == continuation_strings(rendered.prompt, rendered.references[:1])[0]
    examples, groups = flatten_groups(grouped)
    assert groups == [[0, 1], [2, 3], [4, 5]] and examples[2] == grouped[1][0]
