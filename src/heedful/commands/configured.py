"""Commands whose options are one config dataclass (see :mod:`heedful.configs`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from heedful.configs import parse_config

C = TypeVar("C")


def add_config_command(app: typer.Typer, name: str, config_cls: type[C], run: Callable[[C], None]) -> None:
    """Register ``heedful NAME``: its flags are ``config_cls``'s fields, its help ``run``'s docstring."""
    doc = (run.__doc__ or "").strip()

    @app.command(
        name=name,
        help=doc,
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    )
    def command(ctx: typer.Context) -> None:
        run(parse_config(config_cls, list(ctx.args), prog=f"heedful {name}", description=doc))
