"""Study files expand into a static plan: grids, dependencies paired on shared axes, keys from configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from heedful.errors import UserError
from heedful.studies.spec import load_study

STUDY = {
    "study": "tiny",
    "vars": {"model": "m", "tasks": "jsonl:t.jsonl"},
    "variants": {"big": {"vars": {"model": "M"}}},
    "units": {
        "train": {
            "command": "train",
            "grid": {"budget": ["4", "8"], "method": ["full", "lora"]},
            "config": {"model": {"name": "${model}"}, "data": {"tasks": "${tasks}", "budget": "${budget}"},
                       "method": {"name": "${method}"}, "loop": {"max_steps": 1}},
            "resources": {"num_cpus": 2, "memory": 2000000000},
        },
        "eval": {
            "command": "eval",
            "grid": {"method": ["lora"]},
            "config": {"model": {"name": "${model}", "adapter": "${train.out}/final"}, "data": {"tasks": "${tasks}"}},
        },
        "summary": {"command": "robustness", "config": {"from_run": "${eval.out}", "n_bootstrap": 10}},
    },
}


def _write(tmp_path: Path, study: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def test_grids_expand_and_dependents_pair_on_shared_axes(tmp_path):
    study = load_study(_write(tmp_path, STUDY), out=tmp_path / "out")
    ids = [u.id for u in study.units]
    assert ids[:4] == ["train[budget=4,method=full]", "train[budget=4,method=lora]",
                       "train[budget=8,method=full]", "train[budget=8,method=lora]"]
    # eval maps over train's grid but keeps only its own method; the summary maps over eval's points
    assert ids[4:] == ["eval[budget=4,method=lora]", "eval[budget=8,method=lora]",
                       "summary[budget=4,method=lora]", "summary[budget=8,method=lora]"]
    train8 = study.unit("train[budget=8,method=lora]")
    assert train8.config.data.budget == "8" and train8.config.method.name == "lora"
    assert train8.resources.num_cpus == 2 and train8.resources.memory == 2_000_000_000
    eval8 = study.unit("eval[budget=8,method=lora]")
    assert eval8.needs == ("train[budget=8,method=lora]",)
    assert eval8.config.model.adapter == f"{train8.config.out}/final"
    assert study.unit("summary[budget=8,method=lora]").config.from_run == eval8.config.out
    # every unit writes in its own folder, named by its command and the hash of its config
    assert train8.folder == tmp_path / "out" / "units" / f"train-{train8.key}"
    assert len({u.key for u in study.units}) == len(study.units)


def test_the_plan_is_a_pure_function_of_the_file_and_variants_change_vars(tmp_path):
    path = _write(tmp_path, STUDY)
    first, again = load_study(path, out=tmp_path / "o"), load_study(path, out=tmp_path / "o")
    assert [(u.id, u.key) for u in first.units] == [(u.id, u.key) for u in again.units]
    big = load_study(path, variant="big", out=tmp_path / "o")
    assert big.units[0].config.model.name == "M" and big.units[0].key != first.units[0].key
    assert load_study(path).out == Path("runs/studies/tiny") and load_study(path, variant="big").out.name == "tiny-big"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"units": {"a": {"command": "fly"}}}, "units.a.command: 'fly' is not one of eval"),
        ({"units": {"a": {"command": "eval", "config": {"out": "x"}}}}, "units.a.config.out: a unit's folder is set"),
        ({"units": {"a": {"command": "eval", "config": {"data": {"tasks": "${nope}"}}}}},
         "'${nope}' is not an axis, a var or a unit's .out"),
        ({"units": {"a": {"command": "eval", "config": {"seed": "${b.out}"}}, "b": {"command": "eval", "needs": ["a"]}}},
         "cycle: a -> b -> a"),
        ({"units": {"a": {"command": "eval", "needs": ["ghost"]}}}, "needs unknown unit 'ghost'"),
        ({"units": {"a": {"command": "eval", "config": {"scoring": {"rank": "max"}}}}},
         "units.a.config: --scoring.rank: expected one of sum, mean, sun, got 'max'"),
        ({"units": {"a": {"command": "eval", "colour": 1}}}, "units.a: unknown key 'colour'"),
        ({"units": {"a": {"command": "eval", "grid": {"x": []}}}}, "units.a.grid: maps axis names to non-empty lists"),
    ],
)
def test_mistakes_are_one_line_errors_naming_file_and_key(tmp_path, change, message):
    path = _write(tmp_path, {"study": "bad", **change})
    with pytest.raises(UserError) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_an_unknown_variant_and_broken_yaml_are_named(tmp_path):
    path = _write(tmp_path, STUDY)
    with pytest.raises(UserError, match="no variant 'huge' \\(variants: big\\)"):
        load_study(path, variant="huge")
    path.write_text("study: [\n")
    with pytest.raises(UserError, match=f"^{path}: not valid YAML"):
        load_study(path)


@pytest.mark.parametrize("shipped", sorted((Path(__file__).parents[2] / "studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_studies_and_their_paper_variants_expand(shipped):
    """Every shipped study (and its paper-scale variant) is a valid plan: a dry run needs no model or data."""
    raw = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    for variant in [None, *(raw.get("variants") or {})]:
        study = load_study(shipped, variant=variant)
        assert study.units and all(u.needs == tuple(n for n in u.needs if n in {v.id for v in study.units}) for u in study.units)
