"""The ``heedful`` command line: one subcommand per user job.

Each command lives in its own module under ``heedful.commands``; this file only wires
them together and turns a :class:`heedful.errors.UserError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from heedful.allocator import reexec_with_tcmalloc
from heedful.commands import registry
from heedful.errors import UserError


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """Click's exception class, and typer's bundled copy of it where typer vendors click."""
    import click.exceptions

    classes: list[type[BaseException]] = [getattr(click.exceptions, name)]
    try:
        from typer._click import exceptions as bundled  # typer >= 0.29 vendors click

        if hasattr(bundled, name):
            classes.append(getattr(bundled, name))
    except ImportError:
        pass
    return tuple(classes)


_USAGE_ERRORS = _click_classes("ClickException")
_ABORTS = _click_classes("Abort")

app = typer.Typer(
    name="heedful",
    help="Do instruction-tuned language models really follow instructions?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    registry.register(app)


def run() -> None:
    """Entry point of the ``heedful`` console script: :func:`main` under tcmalloc where installed."""
    reexec_with_tcmalloc()
    main()


def main() -> None:
    """The command line in this process (tests call it; the console script goes through :func:`run`)."""
    _register()
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit's code instead of exiting
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _USAGE_ERRORS as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # help was printed; not an error
            sys.exit(0)
        err.show()
        sys.exit(2)
    except _ABORTS:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    run()
