"""Experiment trackers for training runs (TensorBoard, MLflow, W&B), through accelerate's.

A training run is one tracker run, named by its run id: TensorBoard writes
``LOG_DIR/RUN_ID/``; MLflow a run named RUN_ID in the experiment ``heedful``
(``MLFLOW_EXPERIMENT_NAME`` overrides), in a file store at ``LOG_DIR/mlruns`` unless
``MLFLOW_TRACKING_URI`` (or ``mlflow.set_tracking_uri``) names another; W&B a run named
RUN_ID in the project ``heedful``, its files under ``LOG_DIR``. LOG_DIR is
``loop.log_dir``, else ``OUT/logs``. Accelerate's tracker classes are built here rather
than from their names because a name gives the same string to TensorBoard's folder and
MLflow's experiment, and a run id makes a poor experiment.

Trackers start with the first unit trained (a re-run that finds every unit done logs
nothing) and are finished by :func:`tracked`; only the main process writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

PROJECT = "heedful"
MLRUNS = "mlruns"


def make_trackers(names: Sequence[str], run_name: str, log_dir: Path) -> list[Any]:
    """Accelerate tracker objects for ``names`` (``Accelerator(log_with=...)``), not yet started."""
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

    made: dict[str, Any] = {
        "tensorboard": lambda: TensorBoardTracker(run_name, str(log_dir)),
        "mlflow": lambda: MLflowTracker(experiment_name=PROJECT, run_name=run_name),
        "wandb": lambda: WandBTracker(PROJECT, name=run_name, dir=str(log_dir)),
    }
    return [made[name]() for name in dict.fromkeys(names)]


@dataclasses.dataclass
class Tracking:
    """A run's trackers: started on first use, logged to by name, finished once."""

    accelerator: Any
    names: Sequence[str]
    log_dir: Path
    config: Mapping[str, Any]  # the run's config, stored as the tracker run's parameters
    started: bool = False
    _restore: list[Any] = dataclasses.field(default_factory=list)

    def start(self) -> None:
        if self.started or not self.names:
            return
        self.started = True
        if self.accelerator.is_main_process:
            if "wandb" in self.names:  # the others make their folders themselves
                self.log_dir.mkdir(parents=True, exist_ok=True)
            if "mlflow" in self.names:
                self._use_local_mlflow_store()
        self.accelerator.init_trackers(PROJECT, config=flat_config(self.config))

    def log(self, values: Mapping[str, float], step: int) -> None:
        if self.started and values:
            self.accelerator.log(dict(values), step=step)

    def finish(self, *, failed: bool = False) -> None:
        """End the tracker runs (an MLflow run that ``failed`` is marked FAILED, not FINISHED)."""
        # Not accelerator.end_training(): it also destroys the process group, which the
        # caller's accelerator (and run_training called again in the same process) still needs.
        if self.started and self.accelerator.is_main_process:
            for tracker in self.accelerator.trackers:
                if failed and tracker.name == "mlflow":
                    import mlflow

                    mlflow.end_run(status="FAILED")  # accelerate's finish then finds no run to end
                tracker.finish()
            self.accelerator.trackers.clear()
        for undo in reversed(self._restore):
            undo()
        self._restore.clear()
        self.started = False

    def _use_local_mlflow_store(self) -> None:
        """MLflow's store: the user's (env var or set_tracking_uri), else a file store under the log folder."""
        import mlflow

        if mlflow.is_tracking_uri_set():
            return
        mlflow.set_tracking_uri((self.log_dir / MLRUNS).resolve().as_uri())
        self._restore.append(lambda: mlflow.set_tracking_uri(None))  # also unsets the env var it set
        if "MLFLOW_ALLOW_FILE_STORE" not in os.environ:  # MLflow 3 refuses file stores unless opted in
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
            self._restore.append(lambda: os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None))


@contextlib.contextmanager
def tracked(accelerator: Any, names: Sequence[str] | None, log_dir: Path, config: Mapping[str, Any]) -> Iterator[Tracking]:
    """The run's :class:`Tracking`, finished however the block ends."""
    tracking = Tracking(accelerator, list(names or []), log_dir, config)
    try:
        yield tracking
    except BaseException:
        tracking.finish(failed=True)
        raise
    tracking.finish()


def eval_metrics(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """An evaluation's scores as tracker metrics: ``eval/TASK/INSTRUCTION`` and their mean ``eval/score``."""
    metrics: dict[str, float] = {}
    for task, instructions in summary.get("tasks", {}).items():
        for instruction, entry in instructions.items():
            metrics[metric_name(f"{prefix}eval/{task}/{instruction}")] = float(entry["score"])
    if metrics:
        metrics[f"{prefix}eval/score"] = sum(metrics.values()) / len(metrics)
    return metrics


def metric_name(name: str) -> str:
    """``name`` in the characters every tracker accepts (MLflow's are the fewest: word characters, . - / and space)."""
    return re.sub(r"/{2,}", "/", re.sub(r"[^\w.\-/ ]", "_", name)).strip("/")


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``section.field`` -> value, each a bool, int, float or str (what every tracker stores as a parameter)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out
