import io

from rich.console import Console

from heedful import progress


def test_piped_progress_prints_count_and_eta_lines(monkeypatch):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with progress._progress_lines("evaluating", 4, console, every_s=0.0) as advance:
        advance(1)
        advance(3)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("evaluating: 1/4 (25%)") and "ETA" in lines[0]
    assert lines[-1].startswith("evaluating: 4/4 (100%)")


def test_disabled_progress_is_a_no_op():
    with progress.progress_bar("x", 10, enabled=False) as advance:
        advance(5)
