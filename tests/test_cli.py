import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "heedful.cli", *args], capture_output=True, text=True)


def test_usage_errors_exit_2_without_traceback():
    for args in (["metrics"], ["metrics", "x.jsonl", "--bogus"], ["no-such-command"]):
        proc = run(*args)
        assert proc.returncode == 2, args
        assert "Traceback" not in proc.stderr


def test_user_errors_are_one_line_exit_2():
    proc = run("tasks", "list", "nosuchscheme:x")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def test_help_lists_every_command():
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("tasks", "metrics", "eval", "robustness"):
        assert command in proc.stdout
