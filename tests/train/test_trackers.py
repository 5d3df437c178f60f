"""Experiment trackers (``--loop.log_with``): a tiny model's training run read back from TensorBoard's
event files and MLflow's store, against the loop's own loss history, schedule and evaluations."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from heedful.configs import parse_config
from heedful.errors import HeedfulError, UserError
from heedful.models.config import ModelConfig
from heedful.train.checkpoint import latest_checkpoint
from heedful.train.config import LoopConfig, TrainConfig, TrainDataConfig, TrainEvalConfig, TrainPromptConfig
from heedful.train.recipes import run_id_for, run_training
from heedful.train.trainer import lr_factor


def _config(tasks, model_dir, out, loop: LoopConfig, *, every: int | None = None) -> TrainConfig:
    return TrainConfig(
        data=TrainDataConfig(tasks="+".join(f"superni:{t.metadata['file']}" for t in tasks), budget="4",
                             max_source_length=48, max_target_length=6),
        model=ModelConfig(name=str(model_dir)),
        prompts=TrainPromptConfig("superni:none"),
        loop=loop,
        eval=TrainEvalConfig(every=every, limit=1, max_new_tokens=2),
        out=str(out),
    )


def _losses(unit_dir) -> list[float]:
    """Every optimizer step's loss, as the loop recorded it in its last checkpoint."""
    return json.loads((latest_checkpoint(unit_dir / "checkpoints") / "trainer_state.json").read_text())["losses"]


def _mean_score(results_file) -> float:
    scores = [e["score"] for per_task in json.loads(results_file.read_text())["tasks"].values() for e in per_task.values()]
    return sum(scores) / len(scores)


def test_tensorboard_event_files_hold_every_step_and_evaluation(tasks, tiny_llama_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loop = LoopConfig(epochs=1, batch_size=2, learning_rate=1e-3, schedule="linear", log_with=["tensorboard"])
    config = _config(tasks[:1], tiny_llama_dir, tmp_path / "run", loop, every=1)
    [result] = run_training(config, show_progress=False)
    assert result.steps == 2
    assert run_id_for(config) == run_id_for(dataclasses.replace(config, loop=dataclasses.replace(loop, log_with=None)))

    events = EventAccumulator(str(tmp_path / "run" / "logs" / run_id_for(config)))
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    losses = _losses(tmp_path / "run")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(losses)
    assert [v for _, v in scalars["train/learning_rate"]] == pytest.approx(
        [1e-3 * lr_factor(step, 2, loop) for step in range(2)])
    assert all(v > 0 for _, v in scalars["train/tokens_per_s"])
    # one evaluation per step (eval.every 1), then the final one
    expected = [_mean_score(tmp_path / "run" / f"eval-step-{step:08d}" / "results.json") for step in (1, 2)]
    expected.append(_mean_score(tmp_path / "run" / "results.json"))
    assert [s for s, _ in scalars["eval/score"]] == [1, 2, 2]
    assert [v for _, v in scalars["eval/score"]] == pytest.approx(expected)
    [task] = [t.name for t in tasks[:1]]
    assert any(tag.startswith(f"eval/{task}/") for tag in scalars)


@pytest.mark.parametrize("where", ["default", "env"])
def test_mlflow_store_holds_the_run_its_metrics_and_config(tasks, tiny_llama_dir, tmp_path, monkeypatch, where):
    import mlflow
    from mlflow.tracking import MlflowClient

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    store = (tmp_path / "mlruns").as_uri()
    if where == "env":  # the user's store is honoured
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    # 8 examples in batches of 2: 4 steps, logged at step 3 (mean of 1-3) and at the last
    loop = LoopConfig(epochs=1, batch_size=2, learning_rate=1e-3, log_with=["mlflow"], log_every=3)
    config = _config(tasks, tiny_llama_dir, tmp_path / "run", loop)
    [result] = run_training(config, show_progress=False)
    assert result.steps == 4

    if where == "default":
        store = (tmp_path / "run" / "logs" / "mlruns").as_uri()
        # the file store was used for the run only: nothing of it stays in the process
        assert not mlflow.is_tracking_uri_set() and "MLFLOW_ALLOW_FILE_STORE" not in os.environ
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    else:
        assert not (tmp_path / "run" / "logs").exists()
    client = MlflowClient(tracking_uri=store)
    [run] = client.search_runs([client.get_experiment_by_name("heedful").experiment_id])
    assert run.info.run_name == run_id_for(config) and run.info.status == "FINISHED"
    assert run.data.params["loop.learning_rate"] == "0.001" and run.data.params["data.budget"] == "4"
    losses = _losses(tmp_path / "run")
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [3, 4]
    assert [m.value for m in history] == pytest.approx([sum(losses[:3]) / 3, losses[3]])
    [final] = client.get_metric_history(run.info.run_id, "eval/score")
    assert final.step == 4 and final.value == pytest.approx(_mean_score(tmp_path / "run" / "results.json"))


def test_a_failed_run_is_a_failed_mlflow_run_with_the_steps_it_made(tasks, tiny_llama_dir, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    config = _config(tasks[:1], tiny_llama_dir, tmp_path / "run",
                     LoopConfig(epochs=1, batch_size=2, learning_rate=1e-3, log_with=["mlflow"]))

    def stop(state):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(config, show_progress=False, on_step=stop)
    client = MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("heedful").experiment_id])
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1]


def test_trackers_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(UserError) as err:
        parse_config(TrainConfig, ["--data.tasks", "x", "--loop.log_with", "neptune"], prog="heedful train")
    assert str(err.value) == "--loop.log_with: expected one of tensorboard, mlflow, wandb, got 'neptune'"
    parsed = parse_config(TrainConfig, ["--data.tasks", "x", "--loop.log_with", "tensorboard,mlflow"], prog="t")
    assert parsed.loop.log_with == ["tensorboard", "mlflow"]
    with pytest.raises(HeedfulError, match=r"^unknown tracker 'neptune' in log_with; expected one of tensorboard"):
        TrainConfig(TrainDataConfig(tasks="x"), loop=LoopConfig(log_with=["neptune"])).validate()
    with pytest.raises(HeedfulError, match="log_every must be at least 1"):
        LoopConfig(log_every=0).validate()


def test_a_missing_tracker_package_is_one_line_naming_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(HeedfulError, match=r"^log_with wandb: wandb is not installed; pip install wandb$"):
        LoopConfig(log_with=["wandb"]).validate()
