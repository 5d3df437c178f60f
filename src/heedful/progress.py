"""Rich progress bars with counts and ETA for long work."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def transformers_bars_off(enabled: bool = True) -> Iterator[None]:
    """Hide transformers' own tqdm bars ("Loading weights", "Writing model shards").

    They are noise between heedful's progress lines when nothing is downloaded; a
    setting the user made (bars already off) is left as it was.
    """
    from transformers.utils import logging as hf_logging

    quiet = enabled and hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet:
            hf_logging.enable_progress_bar()


# The live bars drawing now: a bar opened inside another (a study's unit) joins it, as
# rich allows one live display at a time.
_LIVE: list[Progress] = []


@contextlib.contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar (count, elapsed, ETA) on stderr when enabled."""
    if not enabled or total == 0:
        yield lambda n: None
        return
    if _LIVE:
        outer = _LIVE[-1]
        inner = outer.add_task(description, total=total)
        try:
            yield lambda n: outer.advance(inner, n)
        finally:
            outer.remove_task(inner)
        return
    console = Console(file=sys.stderr)
    if not console.is_terminal:
        # Live bars are off when stderr is a file or pipe: log a line every so often instead.
        with _progress_lines(description, total, console) as advance:
            yield advance
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task_id = progress.add_task(description, total=total)
        _LIVE.append(progress)
        try:
            yield lambda n: progress.advance(task_id, n)
        finally:
            _LIVE.pop()


@contextlib.contextmanager
def _progress_lines(
    description: str, total: int, console: Console, every_s: float = 30.0
) -> Iterator[Callable[[int], None]]:
    start = last = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= every_s or done >= total:
            last = now
            rate = done / max(now - start, 1e-9)
            eta = (total - done) / rate if rate > 0 else float("inf")
            console.print(f"{description}: {done}/{total} ({100 * done / total:.0f}%), "
                          f"elapsed {_clock(now - start)}, ETA {_clock(eta)}", highlight=False)

    yield advance


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def stdout_console() -> Console:
    """A console for tables: the terminal's width, or 160 columns when piped to a file."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    return console
