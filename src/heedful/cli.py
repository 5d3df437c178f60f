"""The ``heedful`` command line: one subcommand per user job.

Each command lives in its own module under ``heedful.commands``; this file only wires
them together and turns :class:`HeedfulError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from heedful.errors import HeedfulError

app = typer.Typer(
    name="heedful",
    help="Do instruction-tuned language models really follow instructions?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from heedful.commands import registry

    registry.register(app)


def main() -> None:
    """Entry point of the ``heedful`` console script."""
    _register()
    try:
        app(standalone_mode=False)
    except HeedfulError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(2)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
