"""User-facing errors: one clear line naming the file, line or field at fault."""


class UserError(Exception):
    """Caused by the user's input: the CLI prints it on one line and exits 2."""


class HeedfulError(UserError):
    """An error caused by the user's input; where input is optional (``--prompts.on_unfit skip``) it is skipped."""


class PatternTimeoutError(UserError):
    """A regular expression from an input file ran past its time limit: never skipped, always fatal."""


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix like ``tasks.jsonl:12: field 'input'``."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field is not None:
        loc += f": field '{field}'"
    return loc
