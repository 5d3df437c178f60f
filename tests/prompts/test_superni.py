"""SuperNI encodings against a literal transcription of Tk-Instruct's DataCollatorForNI.

The reference is ``src/ni_collator.py`` of yizhongw/Tk-Instruct, read from the forks
thesofakillers/Tk-Instruct@9afe14ed60a247934d5d291abce6808dc5934ce6 and
nitwtog/Tk-Instruct@2d3c33babcc74f1a4574f284805fb96f20f0485a (identical source-string code;
the upstream file itself was not in the search index). ``_collator_source`` below follows
that code line by line on the raw task JSON, independently of heedful's loader.
"""

from __future__ import annotations

import json
import string

import pytest

from heedful.errors import HeedfulError
from heedful.prompts.superni import ENCODING_NAMES, SUPERNI_ENCODINGS, SuperNIEncoding, encode, encode_superni
from heedful.tasks.superni import load_superni
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "superni"
TASKS = DATA / "tasks"
SMALL = "task1155_bard_analogical_reasoning_trash_or_treasure"

pytestmark = pytest.mark.skipif(not TASKS.is_dir(), reason=f"SuperNI reference data not found at {DATA}")

# Flags of each named encoding, written out from Tk-Instruct's create_exps.py encodings.
FLAGS = {
    "none": dict(add_task_definition=False, num_pos_examples=0, num_neg_examples=0, add_explanation=False),
    "def": dict(add_task_definition=True, num_pos_examples=0, num_neg_examples=0, add_explanation=False),
    "pos1": dict(add_task_definition=False, num_pos_examples=1, num_neg_examples=0, add_explanation=False),
    "pos2": dict(add_task_definition=False, num_pos_examples=2, num_neg_examples=0, add_explanation=False),
    "pos4": dict(add_task_definition=False, num_pos_examples=4, num_neg_examples=0, add_explanation=False),
    "def+pos1": dict(add_task_definition=True, num_pos_examples=1, num_neg_examples=0, add_explanation=False),
    "def+pos2": dict(add_task_definition=True, num_pos_examples=2, num_neg_examples=0, add_explanation=False),
    "def+pos4": dict(add_task_definition=True, num_pos_examples=4, num_neg_examples=0, add_explanation=False),
    "def+pos2+neg2": dict(add_task_definition=True, num_pos_examples=2, num_neg_examples=2, add_explanation=False),
    "def+pos2+expl": dict(add_task_definition=True, num_pos_examples=2, num_neg_examples=2, add_explanation=True),
}


def _collator_source(
    instance,
    tokenizer,
    max_source_length,
    add_task_name=False,
    add_task_definition=True,
    num_pos_examples=0,
    num_neg_examples=0,
    add_explanation=False,
):
    """DataCollatorForNI.__call__'s per-instance source construction, transcribed literally."""
    task_input = ""
    # add the input first.
    task_input += "Now complete the following example -\n"
    task_input += f"Input: {instance['Instance']['input'].strip()}"
    if not task_input[-1] in string.punctuation:
        task_input += "."
    task_input += "\n"
    task_input += "Output: "

    task_name = ""
    if add_task_name:
        task_name += instance["Task"] + ". "

    definition = ""
    if add_task_definition:
        if isinstance(instance["Definition"], list):
            definition = "Definition: " + instance["Definition"][0].strip()
        else:
            definition = "Definition: " + instance["Definition"].strip()
        if not definition[-1] in string.punctuation:
            definition += "."
        definition += "\n\n"

    # try to add positive examples.
    pos_examples = []
    for idx, pos_example in enumerate(instance["Positive Examples"][:num_pos_examples]):
        pos_example_str = f" Positive Example {idx+1} -\n"
        pos_example_str += f"Input: {pos_example['input'].strip()}"
        if not pos_example_str[-1] in string.punctuation:
            pos_example_str += "."
        pos_example_str += "\n"
        pos_example_str += f" Output: {pos_example['output'].strip()}"
        if not pos_example_str[-1] in string.punctuation:
            pos_example_str += "."
        pos_example_str += "\n"
        if add_explanation and "explanation" in pos_example:
            pos_example_str += f" Explanation: {pos_example['explanation'].strip()}"
            if not pos_example_str[-1] in string.punctuation:
                pos_example_str += "."
            pos_example_str += "\n"
        pos_example_str += "\n"
        if len(tokenizer(definition + " ".join(pos_examples) + pos_example_str + task_input)["input_ids"]) <= max_source_length:
            pos_examples.append(pos_example_str)
        else:
            break

    # try to add negative examples.
    neg_examples = []
    for idx, neg_example in enumerate(instance["Negative Examples"][:num_neg_examples]):
        neg_example_str = f" Negative Example {idx+1} -\n"
        neg_example_str += f"Input: {neg_example['input'].strip()}"
        if not neg_example_str[-1] in string.punctuation:
            neg_example_str += "."
        neg_example_str += "\n"
        neg_example_str += f" Output: {neg_example['output'].strip()}"
        if not neg_example_str[-1] in string.punctuation:
            neg_example_str += "."
        neg_example_str += "\n"
        if add_explanation and "explanation" in neg_example:
            neg_example_str += f" Explanation: {neg_example['explanation'].strip()}"
            if not neg_example_str[-1] in string.punctuation:
                neg_example_str += "."
            neg_example_str += "\n"
        neg_example_str += "\n"
        if len(tokenizer(definition + " ".join(pos_examples) + " ".join(neg_examples) + neg_example_str + task_input)["input_ids"]) <= max_source_length:
            neg_examples.append(neg_example_str)
        else:
            break

    source = task_name + definition + "".join(pos_examples) + "".join(neg_examples) + task_input
    tokenized_source = tokenizer(source)["input_ids"]
    if len(tokenized_source) <= max_source_length:
        return source
    return tokenizer.decode(tokenized_source[:max_source_length], skip_special_tokens=True)


class WhitespaceTokenizer:
    """Words as tokens plus a trailing EOS, with the HF call/decode interface the collator uses."""

    eos = "</s>"

    def __init__(self) -> None:
        self.words = [self.eos]
        self.ids: dict[str, int] = {self.eos: 0}

    def _id(self, word: str) -> int:
        if word not in self.ids:
            self.ids[word] = len(self.words)
            self.words.append(word)
        return self.ids[word]

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [self._id(w) for w in text.split()] + [0]}

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return " ".join(self.words[i] for i in ids if not (skip_special_tokens and i == 0))


class CharTokenizer:
    """One token per character: sensitive to the collator's space-joined length check."""

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return "".join(chr(i) for i in ids)


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(TASKS.glob("*.json"))}


@pytest.fixture(scope="module")
def tasks():
    return {t.name: t for t in load_superni(TASKS)}


def _collator_instance(data: dict, name: str, index: int) -> dict:
    # What ni_dataset.py yields: the task JSON plus "Task" and one "Instance".
    return {**data, "Task": name, "Instance": data["Instances"][index]}


def test_named_encodings_match_their_flags():
    assert set(SUPERNI_ENCODINGS) == set(FLAGS)
    for name, flags in FLAGS.items():
        assert SUPERNI_ENCODINGS[name] == SuperNIEncoding(**flags)
    assert set(ENCODING_NAMES) == set(FLAGS) | {"gupta", "gupta-noinst"}


def test_all_tasks_all_encodings_match_collator(tasks, raw):
    unlimited = WhitespaceTokenizer()
    checked = 0
    for name, data in raw.items():
        task = tasks[name]
        for index in sorted({0, min(57, len(task.instances) - 1), len(task.instances) - 1}):
            inst = _collator_instance(data, name, index)
            for enc, flags in FLAGS.items():
                expected = _collator_source(inst, unlimited, 10**9, **flags)
                assert encode_superni(task, task.instances[index].input, enc) == expected, (name, enc)
                assert encode(task, task.instances[index].input, enc) == expected
                checked += 1
            named = _collator_source(inst, unlimited, 10**9, add_task_name=True, **FLAGS["def+pos2"])
            assert encode_superni(task, task.instances[index].input, add_task_name=True) == named
    assert checked >= 119 * 2 * len(FLAGS)


@pytest.mark.parametrize("limit", [24, 96, 200, 400])
def test_token_budget_drops_demonstrations_like_collator(tasks, raw, limit):
    tokenizer = WhitespaceTokenizer()
    dropped = cut = 0
    for name, data in raw.items():
        task = tasks[name]
        inst = _collator_instance(data, name, 0)
        for enc in ("def+pos2", "def+pos2+expl", "pos4"):
            expected = _collator_source(inst, tokenizer, limit, **FLAGS[enc])
            got = encode_superni(task, task.instances[0].input, enc, tokenizer=tokenizer, max_source_length=limit)
            assert got == expected, (name, enc, limit)
            full = encode_superni(task, task.instances[0].input, enc)
            dropped += got != full and "Now complete the following example -" in got
            cut += "Now complete the following example -" not in got
    # The limits are chosen so that both paths are exercised, not trivially skipped.
    assert dropped > 0
    if limit <= 96:
        assert cut > 0


def test_char_tokenizer_keeps_the_space_join_quirk(tasks, raw):
    tokenizer = CharTokenizer()
    for name in raw:
        task, inst = tasks[name], _collator_instance(raw[name], name, 0)
        full = len(encode_superni(task, task.instances[0].input, "def+pos2+neg2"))
        # At exactly the full length the space-joined check already overflows.
        for limit in (full - 200, full - 1, full, full + 1, full + 2):
            expected = _collator_source(inst, tokenizer, limit, **FLAGS["def+pos2+neg2"])
            got = encode_superni(
                task, task.instances[0].input, "def+pos2+neg2", tokenizer=tokenizer, max_source_length=limit
            )
            assert got == expected, (name, limit)


# Hand-written from reading the collator, for task1155 instance 0 ("crumbs : trash. remote : ?").
# The definition ends in "." and the example inputs in "?", so they get no extra period;
# outputs and explanations do. Example blocks start with a space and end with a blank line.
DEFINITION = (
    'Definition: Two analogies that relate items to whether they are trash or treasure is given in the form '
    '"A : B. C : ?". Items marked as "trash" are considered to not have value and can be disposed, whereas '
    'those marked as "treasure" are considered valuable items that must be retained. "A : "B relates item A '
    "to whether it is trash or treasure, as specified by B. Your task is to replace the question mark (?) with "
    'either `trash` or `treasure` for the given item C, following the "A : B" relation.\n\n'
)
POS1 = " Positive Example 1 -\nInput: book : treasure. pillow : ?\n Output: treasure.\n\n"
POS2 = " Positive Example 2 -\nInput: leaf : trash. ring : ?\n Output: treasure.\n\n"
NEG1 = " Negative Example 1 -\nInput: wrapper : trash. baby : ?\n Output: trash.\n\n"
NEG2 = " Negative Example 2 -\nInput: peel : trash. cup : ?\n Output: coffee.\n\n"
QUERY = "Now complete the following example -\nInput: crumbs : trash. remote : ?\nOutput: "
EXPLAINED = (
    " Positive Example 1 -\nInput: book : treasure. pillow : ?\n Output: treasure.\n"
    " Explanation: The analogy models a trash/treasure relation. Books are associated with treasure, "
    "pillows are associated with treasure.\n\n"
    " Positive Example 2 -\nInput: leaf : trash. ring : ?\n Output: treasure.\n"
    " Explanation: The analogy models a trash/treasure relation. Leaves are associated with trash, "
    "rings are associated with treasure.\n\n"
    " Negative Example 1 -\nInput: wrapper : trash. baby : ?\n Output: trash.\n"
    " Explanation: The analogy models a trash/treasure relation. Wrappers are associated with trash, "
    "BUT babies are not associated with trash.\n\n"
    " Negative Example 2 -\nInput: peel : trash. cup : ?\n Output: coffee.\n"
    " Explanation: The analogy models a trash/treasure relation. Peels are associated with trash. "
    "BUT coffee is the wrong answer to the cup, since it models a containment relation.\n\n"
)
HAND = {
    "none": QUERY,
    "def": DEFINITION + QUERY,
    "pos2": POS1 + POS2 + QUERY,
    "def+pos1": DEFINITION + POS1 + QUERY,
    "def+pos2": DEFINITION + POS1 + POS2 + QUERY,
    "def+pos2+neg2": DEFINITION + POS1 + POS2 + NEG1 + NEG2 + QUERY,
    "def+pos2+expl": DEFINITION + EXPLAINED + QUERY,
}


@pytest.mark.parametrize("enc", sorted(HAND))
def test_hand_checked_strings(tasks, enc):
    task = tasks[SMALL]
    assert task.instances[0].input == "crumbs : trash. remote : ?"
    assert encode_superni(task, task.instances[0].input, enc) == HAND[enc]


def test_hand_checked_task_name_and_punctuation(tasks):
    task = tasks[SMALL]
    assert encode_superni(task, "  a : b. c  ", "none", add_task_name=True) == (
        f"{SMALL}. Now complete the following example -\nInput: a : b. c.\nOutput: "
    )


def test_hand_checked_budget(tasks):
    task = tasks[SMALL]
    words = WhitespaceTokenizer()
    # Room for the definition and one example only: the second is dropped, nothing is cut.
    limit = len(words(DEFINITION + POS1 + QUERY)["input_ids"])
    got = encode_superni(task, task.instances[0].input, "def+pos2", tokenizer=words, max_source_length=limit)
    assert got == DEFINITION + POS1 + QUERY
    # Exactly enough characters for all four examples, but the collator measures the
    # accepted examples joined with a space, so the first negative "does not fit".
    chars = CharTokenizer()
    limit = len(DEFINITION + POS1 + POS2 + NEG1 + QUERY)
    got = encode_superni(task, task.instances[0].input, "def+pos2+neg2", tokenizer=chars, max_source_length=limit)
    assert got == DEFINITION + POS1 + POS2 + QUERY
    # A prompt longer than the limit on its own is cut to its first tokens and decoded.
    got = encode_superni(task, task.instances[0].input, "none", tokenizer=words, max_source_length=4)
    assert got == "Now complete the following"


def test_unknown_encoding_lists_valid_names(tasks):
    task = tasks[SMALL]
    with pytest.raises(HeedfulError, match=r"unknown encoding 'def\+pos9'; expected one of none, def, .*gupta-noinst"):
        encode(task, "x", "def+pos9")
    with pytest.raises(HeedfulError, match="unknown encoding"):
        encode_superni(task, "x", "bogus")


def _word_level_hf_tokenizer(texts):
    """A real transformers tokenizer (BatchEncoding output, T5-style trailing </s>), built offline."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for text in texts:
        for word in text.split():
            vocab.setdefault(word, len(vocab))
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    backend.post_processor = tokenizers.processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    backend.decoder = tokenizers.decoders.WordPiece()  # joins words with spaces
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def test_hugging_face_tokenizer_budget_matches_collator(tasks, raw):
    names = list(raw)[::6]
    texts = [d["Definition"][0] for d in raw.values()]
    texts += [e["input"] + " " + e["output"] for n in names for e in raw[n]["Positive Examples"]]
    tokenizer = _word_level_hf_tokenizer(texts)
    for name in names:
        task, inst = tasks[name], _collator_instance(raw[name], name, 0)
        for limit in (48, 160, 320):
            expected = _collator_source(inst, tokenizer, limit, **FLAGS["def+pos2+neg2"])
            got = encode_superni(
                task, task.instances[0].input, "def+pos2+neg2", tokenizer=tokenizer, max_source_length=limit
            )
            assert got == expected, (name, limit)
