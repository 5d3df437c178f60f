"""Run a study's units in dependency order, here (local) or as Ray tasks (ray), never a finished one twice.

A unit is done when its folder holds ``study-unit.json`` with status ``done``; that file
is written last, after the unit's store has been merged into the study's one store
(``OUT/heedful.sqlite``). Killing the driver at any point therefore loses nothing: on the
next run an unfinished unit runs again and resumes from its own cache and checkpoints,
and a merge repeated after a crash gives the same store. A unit that raises is marked
failed with its one-line error; the units that do not depend on it still run, and a
re-run retries it.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from heedful.errors import HeedfulError, UserError
from heedful.hardware import free_cores
from heedful.io import read_json_object, write_json_atomic
from heedful.progress import progress_bar
from heedful.rundir import RunDir
from heedful.store import Store
from heedful.studies.spec import CONFIGS, Study, Unit

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class UnitState:
    """Where one unit stands: done, failed (with its error), blocked by a failed need, or pending."""

    status: str
    error: str | None = None
    wall_s: float | None = None


def unit_state(unit: Unit) -> UnitState:
    marker = RunDir(unit.folder).study_unit
    if not marker.is_file():
        return UnitState("pending")
    data = read_json_object(marker)
    return UnitState(data.get("status", "pending"), data.get("error"), data.get("wall_s"))


def study_states(study: Study) -> dict[str, UnitState]:
    """Every unit's state; a pending unit whose need failed (or is blocked) is blocked."""
    states: dict[str, UnitState] = {}
    for unit in study.units:  # dependencies come first
        state = unit_state(unit)
        if state.status == "pending" and any(states[n].status in ("failed", "blocked") for n in unit.needs):
            failed = next(n for n in unit.needs if states[n].status in ("failed", "blocked"))
            state = UnitState("blocked", f"needs {failed}")
        states[unit.id] = state
    return states


def write_plan(study: Study) -> None:
    """``OUT/study.json``: every unit's id, command, key, folder, needs, axes and resolved config."""
    write_json_atomic(RunDir(study.out).study_plan, {
        "study": study.name,
        "file": str(study.path),
        "variant": study.variant,
        "units": [
            {"id": u.id, "name": u.name, "command": u.command, "key": u.key, "folder": str(u.folder),
             "needs": list(u.needs), "axes": u.axes, "resources": asdict(u.resources), "config": asdict(u.config)}
            for u in study.units
        ],
    })


def execute_unit(command: str, config: dict[str, Any], show_progress: bool = False) -> dict[str, Any]:
    """Run one unit from its plain config (as a Ray worker receives it); never raises.

    Returns ``{"status": "done" | "failed", "error": one line, "wall_s": seconds}``.
    """
    from heedful.configs import config_from_mapping
    from heedful.studies.runners import RUNNERS  # loads torch: only where units run

    started = time.perf_counter()
    try:
        RUNNERS[command](config_from_mapping(CONFIGS[command], config, source=command), show_progress=show_progress)
    except (UserError, HeedfulError) as err:
        return {"status": "failed", "error": str(err), "wall_s": time.perf_counter() - started}
    except Exception as err:  # noqa: BLE001 - a unit's bug must not stop the other units; its trace goes to the log
        log.error("unit %s failed:\n%s", command, traceback.format_exc())
        message = f"{type(err).__name__}: {' '.join(str(err).split())}"
        return {"status": "failed", "error": message, "wall_s": time.perf_counter() - started}
    return {"status": "done", "error": None, "wall_s": time.perf_counter() - started}


def _finish(study: Study, unit: Unit, outcome: dict[str, Any]) -> None:
    """Merge a done unit's store into the study's, then mark it (in that order: see the module doc)."""
    if outcome["status"] == "done":
        unit_store = RunDir(unit.folder).store
        if unit_store.is_file():
            with Store(RunDir(study.out).store) as store:
                store.merge_from(unit_store)
    write_json_atomic(RunDir(unit.folder).study_unit, {"id": unit.id, "command": unit.command, "key": unit.key,
                                                      **outcome, "finished": time.time()})


def run_study(
    study: Study, *, executor: str = "local", address: str | None = None, show_progress: bool = True
) -> dict[str, UnitState]:
    """Run every unit not yet done; returns the final states."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor '{executor}': use local or ray")
    write_plan(study)
    done = {u.id for u in study.units if unit_state(u).status == "done"}
    todo = [u for u in study.units if u.id not in done]
    with progress_bar(f"study {study.name}", total=len(study.units), enabled=show_progress) as advance:
        advance(len(study.units) - len(todo))
        if executor == "local":
            _run_local(study, todo, done, advance, show_progress)
        else:
            _run_ray(study, todo, done, advance, address)
    return study_states(study)


def _ready(unit: Unit, done: set[str]) -> bool:
    return all(need in done for need in unit.needs)


def _run_local(
    study: Study, todo: list[Unit], done: set[str], advance: Callable[[int], None], show_progress: bool
) -> None:
    for unit in todo:  # in dependency order
        if not _ready(unit, done):
            continue  # a need failed: the unit is blocked (study_states says by which)
        log.info("unit %s: %s", unit.id, unit.folder)
        outcome = execute_unit(unit.command, asdict(unit.config), show_progress)
        _finish(study, unit, outcome)
        if outcome["status"] == "done":
            done.add(unit.id)
        advance(1)


def _run_ray(
    study: Study, todo: list[Unit], done: set[str], advance: Callable[[int], None], address: str | None
) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'heedful[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=free_cores()[0], include_dashboard=False, logging_level=logging.WARNING)
    try:
        remote = ray.remote(execute_unit)
        waiting, running = list(todo), {}
        while waiting or running:
            for unit in [u for u in waiting if _ready(u, done)]:
                waiting.remove(unit)
                options = {"num_cpus": unit.resources.num_cpus, "num_gpus": unit.resources.num_gpus}
                if unit.resources.memory:
                    options["memory"] = unit.resources.memory
                running[remote.options(**options).remote(unit.command, asdict(unit.config))] = unit
            if not running:
                break  # what is left waits on a failed unit
            [ref], _ = ray.wait(list(running), num_returns=1)
            unit = running.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # noqa: BLE001 - the worker died (out of memory, node lost)
                outcome = {"status": "failed", "error": f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"}
            _finish(study, unit, outcome)
            if outcome["status"] == "done":
                done.add(unit.id)
            advance(1)
    finally:
        if started_here:
            ray.shutdown()


