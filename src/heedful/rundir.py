"""A run folder's files, each named once: what ``eval``, ``train``, ``robustness`` and
``representations`` write, and what ``summarize``, ``robustness --from_run`` and studies read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """The files of one run folder (``path``); nothing here creates or reads them."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        """The command's resolved config as YAML: ``heedful CMD --config`` on it re-runs the same run."""
        return self.path / "config.yaml"

    @property
    def study_unit(self) -> Path:
        """A study unit's outcome (done or failed, with its one-line error and wall time)."""
        return self.path / "study-unit.json"

    @property
    def study_plan(self) -> Path:
        """A study folder's plan: every unit's id, command, resolved config, folder and needs."""
        return self.path / "study.json"

    @property
    def store(self) -> Path:
        """SQLite store: runs with their full config, cached model outputs, one row per example."""
        return self.path / "heedful.sqlite"

    @property
    def records(self) -> Path:
        """Every scored example of an evaluation, one JSON object a line."""
        return self.path / "records.jsonl"

    @property
    def results(self) -> Path:
        """An evaluation's scores per task and instruction, with config, versions and seeds."""
        return self.path / "results.json"

    @property
    def robustness(self) -> Path:
        """``heedful robustness``: kind summaries and the observed-vs-unobserved comparison."""
        return self.path / "robustness.json"

    @property
    def audit(self) -> Path:
        """``heedful audit``: its measures, format search and verdict."""
        return self.path / "audit.json"

    @property
    def formats(self) -> Path:
        """``heedful audit``: the layouts it evaluated, as an instruction collection."""
        return self.path / "formats.jsonl"

    @property
    def train_config(self) -> Path:
        """``heedful train``: the run's config and provenance."""
        return self.path / "train_config.json"

    @property
    def logs(self) -> Path:
        """``heedful train --loop.log_with``: the experiment trackers' files (unless --loop.log_dir)."""
        return self.path / "logs"

    @property
    def unit(self) -> Path:
        """A finished training unit's marker, naming its final evaluation."""
        return self.path / "unit.json"

    @property
    def representations(self) -> Path:
        """``heedful representations``: distances per instruction, task and kind."""
        return self.path / "representations.json"

    @property
    def vectors(self) -> Path:
        """``heedful representations``: the first-decoded-token vectors and their labels."""
        return self.path / "vectors.npz"
