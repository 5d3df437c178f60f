"""Registers every command on the typer app (one line per command)."""

from __future__ import annotations

import importlib

import typer

from heedful.commands.configured import add_config_command

# Commands whose options are a config dataclass: the module's CONFIG and run().
CONFIG_COMMANDS: list[tuple[str, str]] = [
    ("eval", "heedful.commands.eval"),
    ("robustness", "heedful.commands.robustness"),
    ("train", "heedful.commands.train"),
    ("paraphrase", "heedful.commands.paraphrase"),
    ("representations", "heedful.commands.representations"),
    ("audit", "heedful.commands.audit"),
]
# Commands over files and folders, with a handful of plain typer options: (name, module, attribute).
TYPER_COMMANDS: list[tuple[str, str, str]] = [
    ("metrics", "heedful.commands.metrics", "metrics"),
    ("summarize", "heedful.commands.summarize", "summarize_command"),
    ("report", "heedful.commands.report", "report_command"),
    ("export", "heedful.commands.export", "export_command"),
]


def register(app: typer.Typer) -> None:
    app.add_typer(importlib.import_module("heedful.commands.tasks").app, name="tasks")
    app.add_typer(importlib.import_module("heedful.commands.study").app, name="study")
    for name, module_name in CONFIG_COMMANDS:
        module = importlib.import_module(module_name)
        add_config_command(app, name, module.CONFIG, module.run)
    for name, module_name, attr in TYPER_COMMANDS:
        app.command(name=name)(getattr(importlib.import_module(module_name), attr))
