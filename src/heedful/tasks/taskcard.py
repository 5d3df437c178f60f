"""Task cards: YAML files that map a table's columns (a Hugging Face dataset) onto heedful tasks.

A card says which column is the input, which are the options and the gold answer, and
how rows group into tasks; ``heedful.tasks.hub`` applies it row by row. Built-in cards
live in ``heedful/tasks/cards/*.yaml``; a user's card is any file with the same keys.

Keys (``name`` and ``input`` are required, everything else optional):

* ``datasets``: hub ids the card is for (``[cais/mmlu]``); ``hf:ID`` finds the card by them.
* ``name``: task name, a template (``mmlu_{subject}``); rows group into one task per
  rendered name, in order of first appearance. ``{_config}`` is the spec's CONFIG.
* ``input``: a column name, or a template (``"{question}\\n{context}"``).
* ``options``: a column holding a list of strings, or a list of columns (one option each);
  a row whose list is empty has no options (a generation instance).
* ``gold``: one of ``{index: COLUMN}`` (0-based), ``{letter: COLUMN}`` (``A``, ``B``...),
  ``{text: COLUMN}`` (an option's text) or ``{scores: COLUMN}`` (a list of numbers, one
  per option; the highest wins, the last of ties as heedful's BIG-bench loader does).
* ``references``: a column with the reference output (a string or a list of strings);
  default: the gold option's text.
* ``id``: a column with the instance id; default: the row's position in its task.
* ``definition``, ``category``: templates (constant text, or ``{column}`` placeholders).
* ``metadata``: a mapping of keys to templates, stored in ``Task.metadata``.
* ``type``: ``multiple_choice``, ``classification`` or ``generation``; default: multiple
  choice when every instance has options, classification when there is a label space,
  else generation.
* ``metric``: ``accuracy``, ``exact_match`` or ``rougeL``; default: accuracy for multiple
  choice, exact match otherwise.
* ``source``: the format family, ``Task.source`` (default ``hf``). ``mmlu`` and ``superni``
  give the task its designer prompt from that benchmark (``heedful.prompts.builtin``).
* ``label_space``: a list of labels, or ``infer``: the distinct references of the non-test
  instances when there are at most 20 (the rule of heedful's SuperNI loader).
* ``default_config``: the CONFIG used when the spec gives none.
* ``hub_config``: how the spec's CONFIG names the hub config, a template over ``{config}``
  (``"{config}_zero_shot"``); ``{_config}`` stays the short name.
* ``default_split``: the split loaded when the spec names none (default ``test``).
* ``split_map``: hub split name -> heedful split (``test``, ``val``, ``train``), on top of
  the defaults ``test``->test, ``validation``/``valid``/``val``/``dev``->val,
  ``train``->train; any other name is ``test``.
* ``split_sizes``: ``{test: N, val: M}``: split each task by position instead (first N
  test, next M val, the rest train), as SuperNI's evaluation does.

Templates hold plain ``{name}`` placeholders and ``{{``/``}}`` only: they are data, never
code (the same rule as instruction templates, with its own small renderer here because
tasks sit below prompts).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from heedful.errors import HeedfulError
from heedful.tasks.types import SPLITS, TaskType

CONFIG_FIELD = "_config"
GOLD_KINDS: tuple[str, ...] = ("index", "letter", "text", "scores")
METRICS: tuple[str, ...] = ("accuracy", "exact_match", "rougeL")
DEFAULT_SPLIT = "test"
DEFAULT_SPLIT_MAP: dict[str, str] = {
    "test": "test", "validation": "val", "valid": "val", "val": "val", "dev": "val", "train": "train"
}
KEYS: frozenset[str] = frozenset(
    {
        "datasets", "name", "input", "options", "gold", "references", "id", "definition", "category",
        "metadata", "type", "metric", "source", "label_space", "default_config", "hub_config",
        "default_split", "split_map", "split_sizes",
    }
)
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and ``{field}`` placeholders."""

    text: str
    pieces: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name in self.pieces if name is not None)

    def render(self, values: Mapping[str, Any], loc: str) -> str:
        out: list[str] = []
        for literal, name in self.pieces:
            out.append(literal)
            if name is not None:
                out.append(scalar_text(values[name], name, loc))
        return "".join(out)


def scalar_text(value: Any, name: str, loc: str) -> str:
    """A cell as text: strings as they are, numbers and booleans through ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise HeedfulError(f"{loc}: field '{name}' must be text or a number, got {type(value).__name__}")


def parse_template(text: str, loc: str) -> Template:
    """Check ``text`` holds only plain ``{name}`` placeholders; ``loc`` names the card key."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as err:
        raise HeedfulError(f"{loc}: malformed braces in {text!r} ({err}); write literal braces as {{{{ }}}}") from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion):
            raise HeedfulError(f"{loc}: placeholder {{{name}}} in {text!r} must be a plain column name")
        pieces.append((literal, name))
    return Template(text, tuple(pieces))


@dataclass(frozen=True)
class Card:
    """A parsed task card (see the module docstring for each key)."""

    origin: str  # the card file, for messages
    name: Template
    input: Template | str  # a column name, or a template
    datasets: tuple[str, ...] = ()
    options: str | tuple[str, ...] | None = None
    gold: tuple[str, str] | None = None  # (kind, column)
    references: str | None = None
    id: str | None = None
    definition: Template | None = None
    category: Template | None = None
    metadata: dict[str, Template] = field(default_factory=dict)
    type: TaskType | None = None
    metric: str | None = None
    source: str = "hf"
    label_space: tuple[str, ...] | str | None = None
    default_config: str | None = None
    hub_config: Template | None = None
    default_split: str = DEFAULT_SPLIT
    split_map: dict[str, str] = field(default_factory=dict)
    split_sizes: tuple[int, int] | None = None

    def columns(self) -> dict[str, set[str]]:
        """Each dataset column the card reads, with the card keys that read it."""
        used: dict[str, set[str]] = {}

        def add(key: str, *names: str) -> None:
            for name in names:
                if name != CONFIG_FIELD:
                    used.setdefault(name, set()).add(key)

        for key, tpl in (("name", self.name), ("definition", self.definition), ("category", self.category)):
            if tpl is not None:
                add(key, *tpl.fields)
        for key, tpl in self.metadata.items():
            add(f"metadata.{key}", *tpl.fields)
        add("input", *([self.input] if isinstance(self.input, str) else self.input.fields))
        if self.options is not None:
            add("options", *([self.options] if isinstance(self.options, str) else self.options))
        if self.gold is not None:
            add(f"gold.{self.gold[0]}", self.gold[1])
        for key in ("references", "id"):
            if getattr(self, key) is not None:
                add(key, getattr(self, key))
        return used

    def heedful_split(self, hub_split: str) -> str:
        """The heedful split (``test``, ``val``, ``train``) of a hub split's rows."""
        return self.split_map.get(hub_split) or DEFAULT_SPLIT_MAP.get(hub_split, "test")


def read_card(text: str, origin: str) -> Card:
    """Parse a card's YAML ``text``; ``origin`` (its file) names it in every error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise HeedfulError(f"{origin}{line}: invalid YAML ({getattr(err, 'problem', None) or err})") from None
    if not isinstance(data, dict):
        raise HeedfulError(f"{origin}: a task card must be a YAML mapping of keys (name, input, ...)")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise HeedfulError(f"{origin}: unknown key '{unknown[0]}' (keys: {', '.join(sorted(KEYS))})")
    for key in ("name", "input"):
        if key not in data:
            raise HeedfulError(f"{origin}: missing key '{key}'")
    return _Reader(data, origin).card()


class _Reader:
    """Type checks of one card's keys; each error names the card and the key."""

    def __init__(self, data: dict[str, Any], origin: str) -> None:
        self.data = data
        self.origin = origin

    def fail(self, key: str, message: str) -> HeedfulError:
        return HeedfulError(f"{self.origin}: key '{key}' {message}")

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def template(self, key: str) -> Template | None:
        value = self.text(key)
        return parse_template(value, f"{self.origin}: key '{key}'") if value is not None else None

    def texts(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a non-empty list of strings, got {value!r}")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(key, f"must be a mapping, got {value!r}")
        return value

    def card(self) -> Card:
        name = self.template("name")
        assert name is not None
        raw_input = self.text("input")
        assert raw_input is not None
        has_braces = "{" in raw_input or "}" in raw_input
        card_input: Template | str = self.template("input") if has_braces else raw_input  # type: ignore[assignment]
        options: str | tuple[str, ...] | None
        options = self.texts("options") if isinstance(self.data.get("options"), list) else self.text("options")
        metadata = {}
        for key, value in self.mapping("metadata").items():
            if not isinstance(value, str):
                raise self.fail(f"metadata.{key}", f"must be a string template, got {value!r}")
            metadata[key] = parse_template(value, f"{self.origin}: key 'metadata.{key}'")
        card = Card(
            origin=self.origin,
            name=name,
            input=card_input,
            datasets=self.texts("datasets") or (),
            options=options,
            gold=self.gold(),
            references=self.text("references"),
            id=self.text("id"),
            definition=self.template("definition"),
            category=self.template("category"),
            metadata=metadata,
            type=self.task_type(),
            metric=self.choice("metric", METRICS),
            source=self.text("source") or "hf",
            label_space=self.label_space(),
            default_config=self.text("default_config"),
            hub_config=self.hub_config(),
            default_split=self.text("default_split") or DEFAULT_SPLIT,
            split_map=self.split_map(),
            split_sizes=self.split_sizes(),
        )
        if card.options is not None and card.gold is None:
            raise self.fail("gold", "is missing: a card with 'options' must say which one is correct")
        if card.gold is not None and card.options is None:
            raise self.fail("gold", "needs 'options'")
        if card.options is None and card.references is None:
            raise self.fail("references", "is missing: a card without 'options' needs the reference column")
        if card.type is TaskType.MULTIPLE_CHOICE and card.options is None:
            raise self.fail("type", "multiple_choice needs 'options'")
        if card.type is TaskType.CLASSIFICATION and card.label_space is None:
            raise self.fail("type", "classification needs 'label_space' (a list, or infer)")
        return card

    def choice(self, key: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(key)
        if value is not None and value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def task_type(self) -> TaskType | None:
        value = self.choice("type", tuple(t.value for t in TaskType))
        return TaskType(value) if value is not None else None

    def gold(self) -> tuple[str, str] | None:
        value = self.data.get("gold")
        if value is None:
            return None
        if not isinstance(value, dict) or len(value) != 1:
            raise self.fail("gold", f"must be one of {{index|letter|text|scores: COLUMN}}, got {value!r}")
        (kind, column), = value.items()
        if kind not in GOLD_KINDS:
            raise self.fail("gold", f"kind must be one of {', '.join(GOLD_KINDS)}, got {kind!r}")
        if not isinstance(column, str) or not column:
            raise self.fail(f"gold.{kind}", f"must name a column, got {column!r}")
        return kind, column

    def label_space(self) -> tuple[str, ...] | str | None:
        value = self.data.get("label_space")
        if value == "infer":
            return "infer"
        return self.texts("label_space")

    def hub_config(self) -> Template | None:
        tpl = self.template("hub_config")
        if tpl is not None and tpl.fields != {"config"}:
            raise self.fail("hub_config", f"must hold the one placeholder {{config}}, got {tpl.text!r}")
        return tpl

    def split_map(self) -> dict[str, str]:
        value = self.mapping("split_map")
        for hub_split, split in value.items():
            if split not in SPLITS:
                raise self.fail(f"split_map.{hub_split}", f"must be one of {', '.join(SPLITS)}, got {split!r}")
        return dict(value)

    def split_sizes(self) -> tuple[int, int] | None:
        value = self.mapping("split_sizes")
        if not value:
            return None
        extra = sorted(set(value) - {"test", "val"})
        if extra:
            raise self.fail("split_sizes", f"takes only test and val, got {extra[0]!r}")
        sizes = (value.get("test", 0), value.get("val", 0))
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes):
            raise self.fail("split_sizes", f"must map test/val to counts >= 0, got {value!r}")
        return sizes
