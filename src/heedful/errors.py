"""User-facing errors: one clear line naming the file, line or field at fault."""


class HeedfulError(Exception):
    """An error caused by the user's input; the CLI prints it on one line and exits 2."""


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix like ``tasks.jsonl:12: field 'input'``."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field is not None:
        loc += f": field '{field}'"
    return loc
