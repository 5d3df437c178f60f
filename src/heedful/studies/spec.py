"""A study file: named units of heedful commands, their grids and dependencies, expanded into a plan.

A study YAML declares ``units``; each is one command's config (the same dataclasses as
the command line) with an optional ``grid`` of named axes. ``${axis}`` and ``${var}``
inside a config take an axis value or one of ``vars``; ``${unit.out}`` is another unit's
output folder (or file), which also makes this unit depend on that one. A unit that
depends on a gridded unit maps over that unit's grid: its expansions pair with the
dependency's by the axes they share, so ``eval`` of ``train[budget=100]`` reads that
run's weights. ``variants`` override ``vars`` (``--variant paper``), as ``--set NAME=VALUE``
does one var; ``${study_dir}`` is the study file's folder.

Each expanded unit is keyed by the hash of its resolved config (the options that differ
from their defaults, so a new option in a later version keeps the key; not ``out``) and
writes into ``OUT/units/COMMAND-KEY``; the whole plan is static, so ``--dry-run`` shows
every unit and folder before anything runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heedful.analysis.config import AuditConfig, RepresentationsConfig, RobustnessConfig
from heedful.configs import config_from_mapping, non_default
from heedful.errors import UserError
from heedful.evaluate.config import EvalConfig
from heedful.io import read_text
from heedful.perturbations.config import ParaphraseConfig
from heedful.store import content_hash
from heedful.train.config import TrainConfig

# The commands a unit can run, by their CLI names.
CONFIGS: dict[str, type] = {
    "eval": EvalConfig,
    "robustness": RobustnessConfig,
    "representations": RepresentationsConfig,
    "train": TrainConfig,
    "paraphrase": ParaphraseConfig,
    "audit": AuditConfig,
}
STUDY_KEYS = ("study", "description", "out", "vars", "variants", "units")
UNIT_KEYS = ("command", "config", "grid", "needs", "resources")
_REF = re.compile(r"\$\{([A-Za-z_][\w.-]*)\}")


@dataclass(frozen=True)
class Resources:
    """What one unit reserves on a Ray cluster (the local executor runs one unit at a time)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory: int | None = None  # bytes


@dataclass(frozen=True)
class Unit:
    """One expanded unit: a command with its resolved config, run once and never again."""

    id: str  # name, or name[axis=value,...] for a grid point
    name: str
    command: str
    config: Any
    key: str
    needs: tuple[str, ...]
    axes: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)

    @property
    def folder(self) -> Path:
        """Where the unit writes (a paraphrase unit writes the collection file inside it)."""
        return Path(self.config.out).parent if self.command == "paraphrase" else Path(self.config.out)


@dataclass(frozen=True)
class Study:
    name: str
    path: Path
    out: Path
    variant: str | None
    units: tuple[Unit, ...]  # dependencies first

    def unit(self, unit_id: str) -> Unit:
        return next(u for u in self.units if u.id == unit_id)


def load_study(
    path: str | Path, *, variant: str | None = None, out: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Study:
    """Read and expand a study file; every mistake is one :class:`UserError` line naming the file and key.

    ``overrides`` replace ``vars`` after the variant's (``--set NAME=VALUE``), e.g. where a
    user's copy of the data lives.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(read_text(path, what="study file"))
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a study file is a mapping with 'study' and 'units'")
    _known_keys(raw, STUDY_KEYS, f"{path}")
    name = raw.get("study")
    if not isinstance(name, str) or not name:
        raise UserError(f"{path}: 'study' (the study's name) is missing")
    # study_dir: the study file's folder, for files shipped beside it (task lists)
    variables = {"study_dir": str(path.resolve().parent), **_variables(raw, variant, path), **(overrides or {})}
    default_out = f"runs/studies/{name}" + (f"-{variant}" if variant else "")
    folder = Path(out) if out is not None else Path(raw.get("out") or default_out)
    specs = raw.get("units")
    if not isinstance(specs, dict) or not specs:
        raise UserError(f"{path}: 'units' must map unit names to units")
    units: list[Unit] = []
    by_name: dict[str, list[Unit]] = {}
    for unit_name in _dependency_order(specs, path):
        expanded = _expand(unit_name, specs[unit_name], by_name, variables, folder, path)
        by_name[unit_name] = expanded
        units.extend(expanded)
    return Study(name=name, path=path, out=folder, variant=variant, units=tuple(units))


def _known_keys(mapping: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (expected {', '.join(known)})")


def _variables(raw: Mapping[str, Any], variant: str | None, path: Path) -> dict[str, Any]:
    variables = dict(raw.get("vars") or {})
    variants = raw.get("variants") or {}
    if variant is not None:
        if variant not in variants:
            raise UserError(f"{path}: no variant '{variant}' (variants: {', '.join(variants) or 'none'})")
        chosen = variants[variant] or {}
        _known_keys(chosen, ("vars", "description"), f"{path}: variants.{variant}")
        variables.update(chosen.get("vars") or {})
    return variables


def _references(value: Any) -> set[str]:
    """The unit names that ``${name.out}`` references inside ``value`` point to."""
    if isinstance(value, str):
        return {m[1].rsplit(".", 1)[0] for m in _REF.finditer(value) if m[1].endswith(".out")}
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _needs(unit_name: str, spec: Any, specs: Mapping[str, Any], path: Path) -> list[str]:
    where = f"{path}: units.{unit_name}"
    if not isinstance(spec, dict):
        raise UserError(f"{where}: a unit is a mapping with 'command' and 'config'")
    _known_keys(spec, UNIT_KEYS, where)
    explicit = spec.get("needs") or []
    if not isinstance(explicit, list):
        raise UserError(f"{where}.needs: a list of unit names")
    needs = list(dict.fromkeys([*explicit, *sorted(_references(spec.get("config") or {}))]))
    for need in needs:
        if need not in specs:
            raise UserError(f"{where}: needs unknown unit '{need}'")
    return needs


def _dependency_order(specs: Mapping[str, Any], path: Path) -> list[str]:
    needs = {name: _needs(name, spec, specs, path) for name, spec in specs.items()}
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name):], name])
            raise UserError(f"{path}: units depend on each other in a cycle: {cycle}")
        visiting.append(name)
        for need in needs[name]:
            visit(need)
        visiting.pop()
        order.append(name)

    for name in specs:
        visit(name)
    return order


def _grid_points(
    spec: Mapping[str, Any], deps: list[list[Unit]], lookup: Callable[[str], Any], where: str
) -> list[dict[str, Any]]:
    """This unit's axis values: the dependencies' grid points joined on shared axes, times its own grid.

    A grid's values may be a var holding a list (``model: ${models}``).
    """
    points: list[dict[str, Any]] = [{}]
    for expanded in deps:
        choices = list({tuple(u.axes.items()): u.axes for u in expanded}.values())
        points = [{**p, **c} for p in points for c in choices if all(p.get(k, v) == v for k, v in c.items())]
    grid = _interpolate(spec.get("grid") or {}, lookup)
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise UserError(f"{where}.grid: maps axis names to non-empty lists of values")
    own = [[(axis, value) for value in values] for axis, values in grid.items()]
    joined = []
    for point in points:
        for combo in itertools.product(*own):
            if all(point.get(axis, value) == value for axis, value in combo):
                joined.append({**point, **dict(combo)})
    if not joined:
        raise UserError(f"{where}: its grid and its dependencies' grids share no point")
    return joined


def _expand(
    unit_name: str, spec: Mapping[str, Any], by_name: Mapping[str, list[Unit]], variables: Mapping[str, Any],
    folder: Path, path: Path,
) -> list[Unit]:
    where = f"{path}: units.{unit_name}"
    command = spec.get("command")
    if command not in CONFIGS:
        raise UserError(f"{where}.command: '{command}' is not one of {', '.join(CONFIGS)}")
    config_spec = spec.get("config") or {}
    if not isinstance(config_spec, dict):
        raise UserError(f"{where}.config: a mapping of the command's options")
    if "out" in config_spec:
        raise UserError(f"{where}.config.out: a unit's folder is set by the study (OUT/units/COMMAND-KEY)")
    needs = _needs(unit_name, spec, by_name, path)
    resources = _resources(spec.get("resources") or {}, f"{where}.resources")
    units = []
    for axes in _grid_points(spec, [by_name[n] for n in needs], _lookup(variables, {}, {}, where), where):
        deps = {name: _matching(by_name[name], axes, where) for name in needs}
        lookup = _lookup(variables, axes, deps, where)
        resolved = _interpolate(config_spec, lookup)
        config = config_from_mapping(CONFIGS[command], resolved, source=f"{where}.config")
        key = content_hash(command, {k: v for k, v in non_default(config).items() if k != "out"})[:12]
        base = folder / "units" / f"{command}-{key}"
        out = base / "paraphrases.jsonl" if command == "paraphrase" else base
        unit_id = unit_name + ("[" + ",".join(f"{a}={v}" for a, v in axes.items()) + "]" if axes else "")
        units.append(Unit(
            id=unit_id, name=unit_name, command=command, config=dataclasses.replace(config, out=str(out)), key=key,
            needs=tuple(d.id for d in deps.values()), axes=axes, resources=resources,
        ))
    return units


def _matching(expanded: list[Unit], axes: Mapping[str, Any], where: str) -> Unit:
    found = [u for u in expanded if all(axes.get(k) == v for k, v in u.axes.items())]
    if len(found) != 1:
        raise UserError(f"{where}: {len(found)} expansions of '{expanded[0].name}' match {dict(axes)}")
    return found[0]


def _lookup(
    variables: Mapping[str, Any], axes: Mapping[str, Any], deps: Mapping[str, Unit], where: str
) -> Callable[[str], Any]:
    def lookup(name: str) -> Any:
        if name.endswith(".out") and name[: -len(".out")] in deps:
            return deps[name[: -len(".out")]].config.out
        if name in axes:
            return axes[name]
        if name in variables:
            return variables[name]
        raise UserError(f"{where}: '${{{name}}}' is not an axis, a var or a unit's .out")

    return lookup


def _interpolate(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with every ``${name}`` replaced; a string that is only ``${name}`` keeps the value's type."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _interpolate(lookup(whole[1]), lookup)
        return _REF.sub(lambda m: str(lookup(m[1])), value)
    if isinstance(value, dict):
        return {k: _interpolate(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, lookup) for v in value]
    return value


def _resources(spec: Any, where: str) -> Resources:
    if not isinstance(spec, dict):
        raise UserError(f"{where}: a mapping of num_cpus, num_gpus, memory")
    _known_keys(spec, ("num_cpus", "num_gpus", "memory"), where)
    try:
        return Resources(**{k: (int(v) if k == "memory" else float(v)) for k, v in spec.items()})
    except (TypeError, ValueError):
        raise UserError(f"{where}: num_cpus and num_gpus are numbers, memory a number of bytes") from None
