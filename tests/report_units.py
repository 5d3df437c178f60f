"""Report units built from planted records: every figure type, with numbers a test can predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heedful.report.sources import ReportUnit
from record_factory import record

N = 10


def eval_unit(unit_id: str, scores: dict[str, float], *, tasks: tuple[str, ...] = ("t1", "t2"), model: str = "m",
              axes: dict | None = None, command: str = "robustness", task_types: dict[str, str] | None = None,
              **config) -> ReportUnit:
    """An evaluation whose kind ``k`` scores 1 on the first ``scores[k]·N`` instances of each task."""
    records = [
        record(task=task, instruction_id=f"{kind}-0", instruction_kind=kind, instance_id=i,
               score=float(i < round(scores[kind] * N)), metric="accuracy",
               task_type=(task_types or {}).get(task))
        for task in tasks for kind in scores for i in range(N)
    ]
    return ReportUnit(id=unit_id, command=command, config={"model": {"name": model}, "data": {"tasks": "x"}, **config},
                      axes=axes or {}, records=records, run_ids=[unit_id])


def train_unit(unit_id: str, folder: str, *, method: str = "full", kl: float = 0.0, budget: str | None = None,
               model: str = "m", rouge: float | None = None, init_from: str | None = None,
               instructions: str = "superni:gupta", setting: str = "mtl") -> ReportUnit:
    """A train unit; with ``rouge``, its final evaluation scores that ROUGE-L on every instance."""
    config = {"model": {"name": model}, "method": {"name": method}, "loop": {"kl_weight": kl},
              "data": {"budget": budget, "setting": setting}, "prompts": {"instructions": instructions},
              "init_from": init_from, "eval": {"enabled": rouge is not None}}
    records = [] if rouge is None else [
        record(task="t1", category=("Cat A" if i % 2 else "Cat B"), instance_id=i, metric="rougeL", score=rouge,
               rouge_l=rouge, exact_match=0.0)
        for i in range(N)
    ]
    return ReportUnit(id=unit_id, command="train", config=config, folder=folder, records=records)


def representations_unit(unit_id: str, *, model: str = "m", layer: int = -2) -> ReportUnit:
    """Vectors where the unobserved instruction u-k sits k+1 units from the observed one (distance grows with k)."""
    rng = np.random.default_rng(0)
    vectors, labels, distances = [], {"task": [], "instruction_id": [], "kind": [], "instance_id": []}, []
    for i in range(N):
        base = rng.normal(size=8)
        for instruction, kind, shift in [("observed-0", "observed", 0.0), *((f"u-{k}", "unobserved", k + 1.0)
                                                                             for k in range(4))]:
            vectors.append(base + shift * np.eye(8)[0])
            for name, value in (("task", "t1"), ("instruction_id", instruction), ("kind", kind), ("instance_id", str(i))):
                labels[name].append(value)
    for k in range(4):
        distances.append({"task": "t1", "instruction_id": f"u-{k}", "kind": "unobserved", "distance": k + 1.0, "n": N})
    return ReportUnit(id=unit_id, command="representations", config={"model": {"name": model}, "data": {"tasks": "x"},
                                                                    "prompts": {"instructions": "c"}, "layer": layer},
                      distances=distances, vectors={"vectors": np.array(vectors), **{k: np.array(v) for k, v in labels.items()}})


def drop_evaluation(model: str = "m") -> ReportUnit:
    """The evaluation matching :func:`representations_unit`: u-k loses 0.2·(k+1) accuracy against observed 1.0."""
    records = [record(task="t1", instruction_id="observed-0", instruction_kind="observed", instance_id=i, score=1.0)
               for i in range(N)]
    for k in range(4):
        records += [record(task="t1", instruction_id=f"u-{k}", instruction_kind="unobserved", instance_id=i,
                           score=float(i >= 2 * (k + 1))) for i in range(N)]
    return ReportUnit(id="eval-for-distances", command="robustness", records=records,
                      config={"model": {"name": model}, "data": {"tasks": "x"}, "prompts": {"instructions": "c"}})


def baselines(uniform: float, majority: float) -> dict:
    return {"overall": {"uniform_expected": uniform, "majority": majority, "n_tasks": 2},
            "tasks": {"t1": {"uniform_expected": uniform, "majority": majority},
                      "t2": {"uniform_expected": uniform, "majority": majority}}}


def every_kind_of_unit(tmp_path: Path) -> list:
    """Units that give every figure type a report draws."""
    ft = train_unit("align[method=full]", str(tmp_path / "ft"), method="full", kl=0.5)
    kung = eval_unit("untuned", {"designer": 0.4, "simplified": 0.4, "delusive": 0.3, "none": 0.1}, command="eval")
    kung.baselines = baselines(0.5, 0.55)
    return [
        eval_unit("p[shots=0]", {"designer": 0.3, "unobserved": 0.5}, axes={"shots": 0}, tasks=("qa", "bc"),
                  task_types={"qa": "QA", "bc": "BC"}),
        eval_unit("p[shots=1]", {"designer": 0.5, "unobserved": 0.4}, axes={"shots": 1}),
        ft, eval_unit("after", {"observed": 0.7, "unobserved": 0.6}, model=ft.folder),
        eval_unit("before", {"observed": 0.6, "unobserved": 0.3}),
        representations_unit("reps"), drop_evaluation(), kung,
        *(train_unit(f"{m}-{b}", f"f-{m}-{b}", model=m, budget=b, rouge=r)
          for m, b, r in (("instruct", "8", 0.5), ("instruct", "all", 0.7), ("plain", "8", 0.2), ("plain", "all", 0.6))),
    ]
