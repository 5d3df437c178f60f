"""Config dataclasses as command lines and YAML: flags, files and ``--help`` from one declaration.

jsonargparse turns the dataclass (nested sections, typed fields, attribute docstrings)
into ``--section.field`` flags, reads ``--config FILE.yaml`` and writes ``--print-config``,
as litgpt does. It was chosen over tyro because it reads and writes YAML itself, merges a
file with flags given after it, and checks types and ``Literal`` choices on both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from heedful.errors import UserError
from heedful.io import write_text_atomic
from heedful.rundir import RunDir

C = TypeVar("C")


def config_parser(config_cls: type, *, prog: str, description: str) -> Any:
    """The jsonargparse parser of ``config_cls`` (``--config``, ``--print-config``, one flag per field)."""
    from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(prog=prog, description=description, exit_on_error=False, print_config="--print-config")
    parser.add_argument(
        "--config", action=ActionConfigFile, help="YAML file of options (as --print-config writes); later flags win."
    )
    parser.add_class_arguments(config_cls, nested_key=None, as_group=False, fail_untyped=True)
    return parser


def parse_config(config_cls: type[C], args: list[str], *, prog: str, description: str = "") -> C:
    """``config_cls`` from command-line ``args``; a bad flag, value or file is one :class:`UserError` line.

    A boolean flag given bare (``--baselines``) means true and a list may be given as
    ``a,b`` as well as ``[a, b]``, as users of other tools expect.
    """
    parser = config_parser(config_cls, prog=prog, description=description)
    try:
        namespace = parser.parse_args(_shell_forms(parser, args))
        built = parser.instantiate(namespace)
    except (argparse.ArgumentError, ValueError, TypeError) as err:
        files = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--config"]
        message = one_line(str(err))
        raise UserError(f"{', '.join(files)}: {message}" if files and _about_a_file(message) else message) from None
    return config_cls(**{f.name: built[f.name] for f in dataclasses.fields(config_cls)})  # type: ignore[call-arg]


def _shell_forms(parser: Any, args: list[str]) -> list[str]:
    """The forms people type, in jsonargparse's: a bare boolean flag is true, a comma list is a list."""
    booleans, lists = set(), set()
    for action in parser._actions:
        hint = getattr(action, "_typehint", None)
        if hint is bool:
            booleans.update(action.option_strings)
        elif list in (typing.get_origin(hint), *map(typing.get_origin, typing.get_args(hint))):
            lists.update(action.option_strings)
    out: list[str] = []
    for i, arg in enumerate(args):
        previous = args[i - 1] if i else ""
        if previous in lists and not arg.startswith(("[", "--")) and arg not in ("null", "None"):
            arg = json.dumps([part.strip() for part in arg.split(",") if part.strip()])
        out.append(arg)
        if arg in booleans and (i + 1 == len(args) or args[i + 1].startswith("--")):
            out.append("true")
    return out


def _about_a_file(message: str) -> bool:
    return message.startswith(("Problems parsing config", "Group ", "Key ")) or "does not accept" in message


def config_from_mapping(config_cls: type[C], data: dict[str, Any], *, source: str) -> C:
    """``config_cls`` from a nested mapping (a study unit, a stored config.yaml), checked like flags."""
    parser = config_parser(config_cls, prog=source, description="")
    try:
        namespace = parser.parse_object(data)
        built = parser.instantiate(namespace)
    except (argparse.ArgumentError, ValueError, TypeError) as err:
        raise UserError(f"{source}: {one_line(str(err))}") from None
    return config_cls(**{f.name: built[f.name] for f in dataclasses.fields(config_cls)})  # type: ignore[call-arg]


_KEY = re.compile(r'^(?:Parser key|Key) "([^"]+)"')


def one_line(message: str) -> str:
    """jsonargparse's multi-line message as one line that names the flag."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "invalid options"
    match = _KEY.match(lines[0])
    if not match:
        return " ".join(lines)
    rest = lines[1:] if lines[0].endswith(":") else [lines[0][match.end():].strip(" :")]
    expected = [line[2:] for line in rest if line.startswith("- Expected") and "NoneType" not in line]
    given = next((line.split(":", 1)[1].strip() for line in rest if line.startswith("Given value:")), None)
    if expected:
        named = given is not None and not any("Got value" in line for line in expected)  # a list's item names it
        detail = " or ".join(expected) + (f", got {given!r}" if named else "")
    else:
        detail = rest[0] if rest else "invalid value"
    return f"--{match[1]}: {_plain(detail)}"


def _plain(detail: str) -> str:
    """Python type reprs in jsonargparse's messages as words a user reads."""
    detail = re.sub(r"Expected a typing\.Literal\[(.*?)\]\.? ?Got value: ?(.*)", lambda m: (
        f"expected one of {m[1].replace(chr(39), '')}, got {m[2]!r}"), detail)
    detail = detail.replace("Expected a <class 'list'>", "expected a list such as [a, b]")
    return re.sub(r"Expected a <class '(\w+)'>", r"expected \1", detail)


def save_config(config: Any, out: str | Path) -> Path:
    """Write the resolved ``config`` as ``out/config.yaml``, the file ``--config`` reads back."""
    path = RunDir(Path(out)).config
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True))
    return path


def non_default(config: Any, defaults: Any = None, prefix: str = "") -> dict[str, Any]:
    """``section.field`` -> value for the fields of a config that differ from their defaults.

    A section's defaults are its parent's default for it (``RobustnessConfig`` samples 3
    instances), else its own fields' defaults; a required field is always kept. Keys built
    from this stay the same when a version adds an option with a default.
    """
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        default = getattr(defaults, field.name, _default(field)) if defaults is not None else _default(field)
        name = prefix + field.name
        if dataclasses.is_dataclass(value):
            out.update(non_default(value, default if dataclasses.is_dataclass(default) else None, f"{name}."))
        elif default is dataclasses.MISSING or default != value:
            out[name] = value
    return out


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING
