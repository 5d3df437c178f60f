"""Registers every command module on the typer app (one line per module)."""

from __future__ import annotations

import importlib

import typer

# (module, attribute, name, kind): kind "group" adds a typer sub-app, "command" a function.
COMMANDS: list[tuple[str, str, str, str]] = [
    ("heedful.commands.tasks", "app", "tasks", "group"),
    ("heedful.commands.metrics", "metrics", "metrics", "command"),
    ("heedful.commands.eval", "eval_command", "eval", "command"),
    ("heedful.commands.robustness", "robustness_command", "robustness", "command"),
    ("heedful.commands.train", "train_command", "train", "command"),
    ("heedful.commands.paraphrase", "paraphrase_command", "paraphrase", "command"),
    ("heedful.commands.summarize", "summarize_command", "summarize", "command"),
    ("heedful.commands.representations", "representations_command", "representations", "command"),
]


def register(app: typer.Typer) -> None:
    for module_name, attr, name, kind in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:  # command not built yet
                continue
            raise
        obj = getattr(module, attr)
        if kind == "group":
            app.add_typer(obj, name=name)
        else:
            app.command(name=name)(obj)
