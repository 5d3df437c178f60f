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


def test_transformers_bars_are_off_inside_and_restored_after():
    from transformers.utils import logging as hf_logging

    from heedful.progress import transformers_bars_off

    hf_logging.enable_progress_bar()
    with transformers_bars_off():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    with transformers_bars_off(enabled=False):
        assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the user's own choice stays
    with transformers_bars_off():
        pass
    assert not hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()


def test_a_bar_opened_inside_a_live_bar_joins_it(monkeypatch):
    """A study's bar and its unit's bar draw as one live display (rich allows only one)."""
    out = io.StringIO()
    monkeypatch.setattr(progress, "Console", lambda file=None: Console(file=out, force_terminal=True, width=100))
    with progress.progress_bar("study", 2) as outer:
        with progress.progress_bar("evaluating", 3) as inner:
            inner(3)
            assert len(progress._LIVE) == 1 and len(progress._LIVE[0].tasks) == 2
        outer(1)
        assert [t.description for t in progress._LIVE[0].tasks] == ["study"]  # the unit's bar went with it
    assert progress._LIVE == [] and "study" in out.getvalue()
