"""One declaration per command: flags, YAML files and --print-config come from the config dataclasses."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heedful.analysis.config import RepresentationsConfig, RobustnessConfig
from heedful.configs import config_from_mapping, non_default, one_line, parse_config, save_config
from heedful.errors import UserError
from heedful.evaluate.config import EvalConfig
from heedful.perturbations.config import ParaphraseConfig
from heedful.train.config import TrainConfig, TrainDataConfig

OVERRIDES = {
    EvalConfig: ["--model.name", "m", "--data.limit", "3", "--prompts.kinds", "[observed, designer]",
                 "--scoring.rank", "mean", "--baselines", "--seed", "4"],
    RobustnessConfig: ["--data.tasks", "jsonl:x.jsonl", "--n_bootstrap", "50", "--prompts.shots", "1"],
    RepresentationsConfig: ["--layer", "-1", "--reference_kinds", "[observed]", "--model.dtype", "bfloat16"],
    TrainConfig: ["--data.tasks", "superni:x", "--method.name", "lora", "--loop.learning_rate", "1e-3",
                  "--eval.enabled", "false", "--prompts.instructions", "superni:none"],
    ParaphraseConfig: ["--k", "2", "--endpoint", "http://127.0.0.1:1"],
}


@pytest.mark.parametrize("config_cls", list(OVERRIDES), ids=lambda c: c.__name__)
def test_flags_yaml_and_print_config_round_trip(config_cls, tmp_path):
    config = parse_config(config_cls, OVERRIDES[config_cls], prog="heedful x")
    assert isinstance(config, config_cls)
    path = save_config(config, tmp_path)
    assert parse_config(config_cls, ["--config", str(path)], prog="heedful x") == config
    assert config_from_mapping(config_cls, yaml.safe_load(path.read_text()), source=str(path)) == config
    # a flag after the file wins over it
    again = parse_config(config_cls, ["--config", str(path), "--seed", "9"], prog="heedful x")
    assert again == dataclasses.replace(config, seed=9)


def test_flags_reach_the_nested_sections():
    config = parse_config(EvalConfig, OVERRIDES[EvalConfig], prog="heedful eval")
    assert config.model.name == "m" and config.data.limit == 3 and config.prompts.kinds == ["observed", "designer"]
    assert config.scoring.rank == "mean" and config.baselines is True and config.seed == 4
    # a comma list is a list, as a bare boolean flag is true
    commas = parse_config(EvalConfig, ["--prompts.kinds", "observed,designer", "--prompts.perturb", "paraphrase:p.jsonl"],
                          prog="heedful eval")
    assert commas.prompts.kinds == ["observed", "designer"] and commas.prompts.perturb == ["paraphrase:p.jsonl"]
    robustness = parse_config(RobustnessConfig, [], prog="heedful robustness")
    assert robustness.prompts.instructions == "designer,heedful" and robustness.data.limit == 3  # its own defaults


def test_the_run_id_ignores_where_results_go_and_the_batch_size():
    base = EvalConfig()
    moved = dataclasses.replace(base, out="elsewhere", scoring=dataclasses.replace(base.scoring, batch_size=1))
    assert moved.identity() == base.identity()
    assert dataclasses.replace(base, seed=1).identity() != base.identity()
    # robustness is an evaluation plus a summary: the evaluation's identity is the same
    assert RobustnessConfig(data=base.data, prompts=base.prompts, n_bootstrap=5).identity() == base.identity()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.dtype", "x"], "--model.dtype: expected one of float32, bfloat16, float16, auto, got 'x'"),
        (["--loop.epochs", "2"], "unrecognized arguments: --loop.epochs 2"),
        (["--data.limit", "many"], "--data.limit: expected int, got 'many'"),
        (["--no-such-flag", "1"], "unrecognized arguments: --no-such-flag 1"),
    ],
)
def test_bad_flags_are_one_line_user_errors(args, message):
    with pytest.raises(UserError) as info:
        parse_config(EvalConfig, args, prog="heedful eval")
    assert str(info.value) == message


def test_bad_config_files_are_named_in_one_line(tmp_path):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model:\n  nam: x\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [\n")
    for path, pattern in ((unknown, "does not accept option 'nam'"), (broken, "Problems parsing config")):
        with pytest.raises(UserError) as info:
            parse_config(EvalConfig, ["--config", str(path)], prog="heedful eval")
        assert str(info.value).startswith(f"{path}: ") and pattern in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"^study.yaml: --scoring.rank: expected one of sum, mean, sun, got 'max'$"):
        config_from_mapping(EvalConfig, {"scoring": {"rank": "max"}}, source="study.yaml")


def test_one_line_keeps_a_message_it_does_not_know():
    assert one_line("something\n  went wrong") == "something went wrong"


def test_help_comes_from_the_field_docstrings():
    proc = subprocess.run([sys.executable, "-m", "heedful.cli", "eval", "--help"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--prompts.shots" in proc.stdout and "Demonstrations per prompt" in proc.stdout
    assert "--print-config" in proc.stdout and "--config CONFIG" in proc.stdout


def test_print_config_writes_the_yaml_that_config_reads(tmp_path: Path):
    def heedful(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "heedful.cli", *args], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    printed = heedful("train", "--data.tasks", "superni:x", "--loop.epochs", "3", "--print-config")
    path = tmp_path / "train.yaml"
    path.write_text(printed)
    assert yaml.safe_load(printed)["loop"]["epochs"] == 3
    assert heedful("train", "--config", str(path), "--print-config") == printed


def test_non_default_keeps_what_differs_from_the_defaults_and_required_fields():
    assert non_default(EvalConfig()) == {}
    changed = dataclasses.replace(EvalConfig(), seed=3, scoring=dataclasses.replace(EvalConfig().scoring, rank="mean"))
    assert non_default(changed) == {"seed": 3, "scoring.rank": "mean"}
    assert non_default(TrainConfig(TrainDataConfig(tasks="x"))) == {"data.tasks": "x"}  # required: always there
    # a section's defaults are its parent's (robustness samples 3 instances by default)
    assert non_default(RobustnessConfig()) == {}
    assert non_default(RobustnessConfig(), EvalConfig())["data.limit"] == 3
    # so a run id does not change when a later version adds an option with a default
    assert EvalConfig().identity() == {}
