"""``hf:`` task specs: Hugging Face datasets (from the hub or a local copy) as tasks, through a task card.

``hf:SOURCE[:CONFIG][@SPLIT[,SPLIT...]][#CARD]``:

* ``SOURCE``: a hub dataset id (``cais/mmlu``), read with ``datasets.load_dataset``; or a local
  copy: a ``save_to_disk`` folder (a Dataset or a DatasetDict) or a Parquet, JSON, JSON Lines or
  CSV file. Local copies go through the same card as the hub's.
* ``CONFIG``: the hub config (``all``, ``abstract_algebra``); default: the card's
  ``default_config``. For a local copy it only fills the card's ``{_config}`` (a task name).
* ``SPLIT``: the split read; default ``test`` (or the card's ``default_split``). Rows of
  ``test`` become test instances, ``validation`` val, ``train`` train (per card: ``split_map``).
  Several splits load together (``@test,dev``: MMLU's dev rows as the few-shot pool); the ids of
  rows from the second split on carry the split's name (``dev-0``), as the MMLU loader's do.
  A local file is the one split its spec names.
* ``CARD``: a card file (``#my_card.yaml``) or a built-in card by dataset id (``#cais/mmlu``,
  needed for local copies); default: the built-in card of ``SOURCE``.

Rows that share a task and an id are one instance with their references pooled (the SuperNI
hub copy has one row per reference output). The card format is in ``heedful.tasks.taskcard``.
``datasets`` is imported only when an ``hf:`` spec is loaded: it takes a second to import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.io import read_text
from heedful.tasks.superni import infer_label_space, split_for_index
from heedful.tasks.taskcard import CONFIG_FIELD, Card, read_card, scalar_text
from heedful.tasks.types import Instance, Task, TaskType

# Local file suffixes and the ``datasets`` builder that reads each.
FILE_BUILDERS: dict[str, str] = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
_BATCH = 1000


@dataclass(frozen=True)
class HubSpec:
    """The parts of an ``hf:`` spec (after the scheme)."""

    source: str
    config: str | None = None
    splits: tuple[str, ...] | None = None
    card: str | None = None


def parse_hub_spec(rest: str) -> HubSpec:
    """Split ``SOURCE[:CONFIG][@SPLIT[,SPLIT]][#CARD]``; the last ``#``, ``@`` and ``:`` separate."""
    usage = f"task spec 'hf:{rest}'"

    def cut(text: str, sep: str, what: str) -> tuple[str, str | None]:
        if sep not in text:
            return text, None
        head, _, tail = text.rpartition(sep)
        if not tail.strip():
            raise HeedfulError(f"{usage}: empty {what} after '{sep}' (hf:SOURCE[:CONFIG][@SPLIT][#CARD])")
        return head, tail.strip()

    body, card = cut(rest, "#", "CARD")
    body, split_part = cut(body, "@", "SPLIT")
    source, config = body, None
    tail = body.rpartition(":")[2]
    if ":" in body and "/" not in tail and "\\" not in tail:  # a config has no path separator
        source, config = cut(body, ":", "CONFIG")
    if not source.strip():
        raise HeedfulError(f"{usage}: no dataset (hf:SOURCE[:CONFIG][@SPLIT][#CARD])")
    splits = tuple(s.strip() for s in split_part.split(",")) if split_part is not None else None
    if splits is not None and (not all(splits) or len(set(splits)) != len(splits)):
        raise HeedfulError(f"{usage}: splits must be distinct names, got '{split_part}'")
    return HubSpec(source.strip(), config, splits, card)


@functools.lru_cache(maxsize=1)
def builtin_cards() -> tuple[Card, ...]:
    """The cards shipped in ``heedful/tasks/cards``, by file name."""
    folder = resources.files("heedful").joinpath("tasks", "cards")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return tuple(read_card(f.read_text(encoding="utf-8"), str(f)) for f in files)


def builtin_card(name: str) -> Card | None:
    """The built-in card for a dataset id (or named by its file stem), if there is one."""
    for card in builtin_cards():
        if name in card.datasets or Path(card.origin).stem == name:
            return card
    return None


def _known_cards() -> str:
    return ", ".join(d for card in builtin_cards() for d in card.datasets)


def resolve_card(spec: HubSpec) -> Card:
    """The card ``spec`` names (a file or a built-in), else the built-in card of its dataset id."""
    if spec.card is not None:
        if spec.card.endswith((".yaml", ".yml")) or Path(spec.card).expanduser().is_file():
            path = Path(spec.card).expanduser()
            return read_card(read_text(path, what="task card"), str(path))
        card = builtin_card(spec.card)
        if card is None:
            raise HeedfulError(
                f"hf:{spec.source}: no built-in task card '{spec.card}' (built-in: {_known_cards()}); "
                "give a card file as #path/to/card.yaml"
            )
        return card
    card = builtin_card(spec.source)
    if card is not None:
        return card
    if _is_local(spec.source):
        raise HeedfulError(
            f"hf:{spec.source}: a local copy needs a task card: add #DATASET_ID (built-in: {_known_cards()}) "
            "or #path/to/card.yaml"
        )
    raise HeedfulError(
        f"hf:{spec.source}: no built-in task card for this dataset (built-in: {_known_cards()}); "
        "write one (heedful.tasks.taskcard) and give it as #path/to/card.yaml"
    )


def load_hub(rest: str) -> list[Task]:
    """The tasks of an ``hf:`` spec (``rest`` is what follows ``hf:``; syntax in the module docstring)."""
    spec = parse_hub_spec(rest)
    card = resolve_card(spec)
    config = spec.config or card.default_config
    splits = spec.splits or (card.default_split,)
    tables = read_tables(spec.source, config, splits, card)
    return build_tasks(card, tables, where=f"hf:{rest}", source=spec.source, config=config)


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise HeedfulError("hf: task specs need the 'datasets' package: pip install datasets") from None
    return datasets


def _is_local(source: str) -> bool:
    path = Path(source).expanduser()
    return path.exists() or source.startswith(("/", ".", "~")) or path.suffix.lower() in FILE_BUILDERS


def read_tables(source: str, config: str | None, splits: Sequence[str], card: Card) -> list[tuple[str, Any]]:
    """``(split, datasets.Dataset)`` for each split, from the hub or a local copy."""
    datasets = _import_datasets()
    path = Path(source).expanduser()
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as err:
            raise HeedfulError(f"{path}: not a folder written by datasets' save_to_disk ({_first_line(err)})") from None
        if isinstance(loaded, datasets.DatasetDict):
            missing = [s for s in splits if s not in loaded]
            if missing:
                raise HeedfulError(f"{path}: no split '{missing[0]}' (splits: {', '.join(loaded)})")
            return [(s, loaded[s]) for s in splits]
        if len(splits) > 1:
            raise HeedfulError(f"{path}: holds one Dataset, not the splits {', '.join(splits)}")
        return [(splits[0], loaded)]
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise HeedfulError(f"{path}: unknown file type (use {', '.join(FILE_BUILDERS)}, or a save_to_disk folder)")
        if len(splits) > 1:
            raise HeedfulError(f"{path}: a file is one split; name one (@SPLIT) or use a save_to_disk folder")
        with _quiet(datasets):  # converting a local file is quick: no progress bar on stderr
            table = _load(datasets, str(path), builder, data_files={splits[0]: str(path)}, split=splits[0])
        return [(splits[0], table)]
    if _is_local(source):
        raise HeedfulError(f"{source}: no such file or folder")
    if card.hub_config is not None:
        if not config:
            raise HeedfulError(f"hf:{source}: give a CONFIG (hf:{source}:CONFIG), the card {card.origin} needs one")
        config = card.hub_config.render({"config": config}, card.origin)
    return [(s, _load(datasets, source, source, config, split=s)) for s in splits]


@contextlib.contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _load(datasets: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return datasets.load_dataset(*args, **kwargs)
    except ConnectionError as err:
        raise HeedfulError(
            f"hf:{what}: cannot reach the Hugging Face hub ({_first_line(err)}); check the network, "
            "or load a local copy (hf:PATH#CARD)"
        ) from None
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as err:
        raise HeedfulError(f"hf:{what}: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass
class _Draft:
    """A task being assembled row by row."""

    settings: dict[str, str]  # definition, category, metadata.* of its first row
    first: str  # where that row is, for messages
    instances: list[Instance] = field(default_factory=list)
    index: dict[tuple[str, str], int] = field(default_factory=dict)  # (hub split, id) -> position
    counts: dict[str, int] = field(default_factory=dict)  # rows per hub split, for positional ids
    hub_splits: list[str] = field(default_factory=list)  # the hub split of each instance


def build_tasks(
    card: Card, tables: Sequence[tuple[str, Any]], *, where: str, source: str, config: str | None
) -> list[Task]:
    """Map every row of ``tables`` (``(split, Dataset)``) through ``card`` into tasks.

    ``where`` names the spec in messages; ``source`` and ``config`` are recorded in the
    tasks' metadata (``path``, ``hf``).
    """
    drafts: dict[str, _Draft] = {}
    used = card.columns()
    for position, (split, table) in enumerate(tables):
        columns = list(table.column_names)
        for column, keys in sorted(used.items()):
            if column not in columns:
                raise HeedfulError(
                    f"{card.origin}: key '{min(keys)}' names column '{column}', which {where} [{split}] "
                    f"lacks (columns: {', '.join(columns)})"
                )
        prefix = f"{split}-" if position else ""
        for index, row in enumerate(_rows(table, sorted(used))):
            row[CONFIG_FIELD] = config or ""
            _add_row(card, drafts, row, split, prefix, f"{where} [{split}] row {index}")
    if not drafts:
        raise HeedfulError(f"{where}: no rows")
    provenance = {"config": config, "splits": [s for s, _ in tables], "card": card.origin}
    return [_finish(card, name, draft, source, provenance) for name, draft in drafts.items()]


def _rows(table: Any, columns: list[str]) -> Iterator[dict[str, Any]]:
    """The rows of a Dataset as dicts of the ``columns`` the card reads, read in batches."""
    if not columns:  # a card of constants only: still one row per table row
        yield from ({} for _ in range(len(table)))
        return
    for batch in table.select_columns(columns).iter(batch_size=_BATCH):
        yield from (dict(zip(columns, values)) for values in zip(*(batch[c] for c in columns)))


def _settings(card: Card, row: dict[str, Any], loc: str) -> dict[str, str]:
    settings = {}
    for key, tpl in (("definition", card.definition), ("category", card.category)):
        if tpl is not None:
            settings[key] = tpl.render(row, loc)
    for key, tpl in card.metadata.items():
        settings[f"metadata.{key}"] = tpl.render(row, loc)
    return settings


def _add_row(card: Card, drafts: dict[str, _Draft], row: dict[str, Any], split: str, prefix: str, loc: str) -> None:
    name = card.name.render(row, loc).strip()
    if not name:
        hint = " (give a CONFIG: hf:SOURCE:CONFIG)" if CONFIG_FIELD in card.name.fields else ""
        raise HeedfulError(f"{loc}: the card's task name {card.name.text!r} renders empty{hint}")
    settings = _settings(card, row, loc)
    draft = drafts.get(name)
    if draft is None:
        draft = drafts[name] = _Draft(settings, loc)
    elif settings != draft.settings:
        key = next(k for k in settings if settings[k] != draft.settings.get(k))
        raise HeedfulError(f"{loc}: task '{name}' has another {key} than at {draft.first}")
    text = scalar_text(row[card.input], card.input, loc) if isinstance(card.input, str) else card.input.render(row, loc)
    options = _options(card, row, loc)
    gold = _gold(card, row, options, loc) if options is not None else None
    references = _references(card, row, loc)
    if not references:
        if options is None or gold is None:
            raise HeedfulError(f"{loc}: no reference output (column '{card.references}' is empty) and no options")
        references = (options[gold],)
    count = draft.counts.get(split, 0)
    draft.counts[split] = count + 1
    ident = prefix + (scalar_text(row[card.id], card.id, loc) if card.id is not None else str(count))
    key = (split, ident)
    if key in draft.index:  # another reference of the same instance
        at = draft.index[key]
        same = draft.instances[at]
        if (same.input, same.options, same.gold) != (text, options, gold):
            raise HeedfulError(f"{loc}: id '{ident}' is used twice in task '{name}' with other input or options")
        pooled = same.references + tuple(r for r in references if r not in same.references)
        draft.instances[at] = dataclasses.replace(same, references=pooled)
        return
    draft.index[key] = len(draft.instances)
    draft.hub_splits.append(split)
    draft.instances.append(Instance(id=ident, input=text, references=references, options=options, gold=gold))


def _options(card: Card, row: dict[str, Any], loc: str) -> tuple[str, ...] | None:
    if card.options is None:
        return None
    if not isinstance(card.options, str):
        return tuple(scalar_text(row[c], c, loc) for c in card.options)
    value = row[card.options]
    if not isinstance(value, list):
        raise HeedfulError(f"{loc}: field '{card.options}' must be a list of options, got {type(value).__name__}")
    return tuple(scalar_text(v, card.options, loc) for v in value) or None


def _gold(card: Card, row: dict[str, Any], options: tuple[str, ...], loc: str) -> int:
    assert card.gold is not None
    kind, column = card.gold
    value = row[column]
    if kind == "index":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(options):
            raise HeedfulError(f"{loc}: field '{column}' = {value!r} is not an index into {len(options)} options")
        return value
    if kind == "letter":
        letter = value.strip().upper() if isinstance(value, str) else ""
        index = ord(letter) - ord("A") if len(letter) == 1 else -1
        if not 0 <= index < len(options):
            raise HeedfulError(f"{loc}: field '{column}' = {value!r} is not a letter A-{chr(64 + len(options))}")
        return index
    if kind == "text":
        if value not in options:
            raise HeedfulError(f"{loc}: field '{column}' = {value!r} is not one of the options")
        return options.index(value)
    numeric = isinstance(value, list) and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in value)
    if not numeric or len(value) != len(options):
        raise HeedfulError(f"{loc}: field '{column}' must be {len(options)} numbers, one per option, got {value!r}")
    best = max(value)
    if len(value) > 1 and best <= min(value):
        raise HeedfulError(f"{loc}: field '{column}' gives every option the same score")
    return max(i for i, s in enumerate(value) if s == best)  # the last of ties, as the BIG-bench loader


def _references(card: Card, row: dict[str, Any], loc: str) -> tuple[str, ...]:
    if card.references is None:
        return ()
    value = row[card.references]
    if isinstance(value, list):
        return tuple(scalar_text(v, card.references, loc) for v in value)
    return (scalar_text(value, card.references, loc),)


def _finish(card: Card, name: str, draft: _Draft, source: str, provenance: dict[str, Any]) -> Task:
    instances = draft.instances
    if card.split_sizes is not None:
        test, val = card.split_sizes
        splits = [split_for_index(i, test, val) for i in range(len(instances))]
    else:
        splits = [card.heedful_split(s) for s in draft.hub_splits]
    instances = [dataclasses.replace(inst, split=s) for inst, s in zip(instances, splits)]
    all_options = all(inst.options is not None for inst in instances)
    if card.type is TaskType.MULTIPLE_CHOICE and not all_options:
        missing = next(inst.id for inst in instances if inst.options is None)
        raise HeedfulError(
            f"{card.origin}: key 'type' is multiple_choice, but task '{name}' instance '{missing}' has no options"
        )
    label_space = infer_label_space(instances) if card.label_space == "infer" else card.label_space
    task_type = card.type or (
        TaskType.MULTIPLE_CHOICE if all_options else TaskType.CLASSIFICATION if label_space else TaskType.GENERATION
    )
    if card.type is TaskType.CLASSIFICATION and not label_space:
        task_type = TaskType.GENERATION  # 'infer' found too many distinct outputs: open text
    settings = draft.settings
    metadata = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("metadata.")}
    return Task(
        name=name,
        type=task_type,
        instances=instances,
        definition=settings.get("definition", ""),
        category=settings.get("category", ""),
        label_space=tuple(label_space) if label_space and task_type is TaskType.CLASSIFICATION else None,
        metric=card.metric or ("accuracy" if task_type is TaskType.MULTIPLE_CHOICE else "exact_match"),
        source=card.source,
        metadata={**metadata, "path": source, "hf": provenance},
    )

