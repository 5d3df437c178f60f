"""What a training run is: its settings, stated once (stored with the run, and its id's source).

Kept apart from the loop and the recipes, which load torch, so the CLI can build and check
a config without importing them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Literal

from heedful.configs import non_default
from heedful.errors import HeedfulError
from heedful.models.config import ModelConfig
from heedful.prompts.superni import ENCODING_NAMES
from heedful.tasks.sampling import parse_budget
from heedful.tasks.types import SPLITS
from heedful.train.methods import METHODS, MethodConfig

SCHEDULES: tuple[str, ...] = ("constant", "linear")
# Experiment trackers (accelerate's) and the package each needs.
TRACKERS: dict[str, str] = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
# Settings that change where and how a run reports, not what it trains: left out of its id.
REPORTING: tuple[str, ...] = ("loop.log_with", "loop.log_dir", "loop.log_every")


@dataclass
class LoopConfig:
    """Optimisation settings; defaults are Tk-Instruct's and Gupta 2023's.

    ``epochs`` passes over the data (or ``max_steps`` optimizer steps, whichever ends
    first); ``batch_size`` is per process; ``schedule`` ``constant`` or ``linear`` decay,
    both after ``warmup_steps`` of linear warm-up; ``save_every`` writes a checkpoint
    every N optimizer steps (one is always written at the end). ``loss`` ``output``
    applies the output head at labelled positions only; ``naive`` uses the model's own
    loss on full logits (needed under FSDP, whose sharded head cannot be called outside
    the model's forward).

    ``activation_checkpoint_every`` recomputes the activations of every N-th decoder
    layer in the backward pass (1: every layer, 0: none). None picks 2 for full
    fine-tuning: with parameters, gradients and AdamW's two moments already four copies
    of the weights, the saved activations set the peak, and recomputing half the layers
    cuts it by over a gigabyte for SmolLM2-135M at 8 x 256 tokens while costing about a
    sixth more compute, which the output-only loss (no head at prompt positions) more
    than pays back. PEFT methods keep every activation (None means 0 there): their
    states are small and their speed is the point. A model that already checkpoints
    (``gradient_checkpointing``) is left as it is.

    ``kl_weight`` is Sun et al. 2023's λ: with instruction groups (one target under a
    reference and paraphrased instructions) the loss is ``(1 - λ)·CE + λ·KL(paraphrase ‖
    reference)``; 0 trains on every prompt with plain cross-entropy.

    ``log_with`` sends the loss, learning rate and tokens/s (every ``log_every`` steps)
    and every evaluation's scores to experiment trackers through accelerate, from the
    main process only; they change nothing that is trained, so they are not part of the
    run's id.
    """

    learning_rate: float = 5e-5
    """Peak learning rate (AdamW)."""
    epochs: int = 2
    """Passes over the training data."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (None: after the epochs)."""
    batch_size: int = 8
    """Examples (or instruction groups) per batch per process."""
    grad_accum: int = 1
    """Batches accumulated per optimizer step."""
    schedule: Literal["constant", "linear"] = "constant"
    """Learning-rate schedule after warm-up: constant, or linear decay to 0."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float | None = 1.0
    """Gradient clipping norm (None: no clipping)."""
    group_by_length: bool = True
    """Batch examples of similar length (seeded)."""
    save_every: int | None = None
    """Checkpoint every N optimizer steps (one is always written at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept per model."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """accelerate's autocast: no, bf16 or fp16."""
    loss: Literal["output", "naive"] = "output"
    """output: the head applied at target positions only; naive: the model's loss on full logits."""
    gradient_checkpointing: bool = False
    """Recompute every layer's activations in backward (less memory, slower)."""
    activation_checkpoint_every: int | None = None
    """Recompute every Nth layer in backward (0 off); None: every 2nd for full fine-tuning, off for PEFT."""
    kl_weight: float = 0.0
    """Sun et al. 2023's lambda: loss (1-lambda) CE + lambda KL(paraphrase || reference) over instruction groups."""
    log_with: list[Literal["tensorboard", "mlflow", "wandb"]] | None = None
    """Experiment trackers to log to (tensorboard, mlflow, wandb); None: none."""
    log_dir: str | None = None
    """Trackers' folder (None: OUT/logs): TensorBoard's events, MLflow's file store unless MLFLOW_TRACKING_URI is set."""
    log_every: int = 1
    """Log the loss (mean since the last log), learning rate and tokens/s every N optimizer steps."""

    def validate(self) -> None:
        if self.schedule not in SCHEDULES:
            raise HeedfulError(f"unknown schedule '{self.schedule}'; expected one of {', '.join(SCHEDULES)}")
        if self.loss not in ("output", "naive"):
            raise HeedfulError(f"unknown loss '{self.loss}'; expected 'output' or 'naive'")
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise HeedfulError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.activation_checkpoint_every is not None and self.activation_checkpoint_every < 0:
            raise HeedfulError(
                f"activation_checkpoint_every must be 0 (off) or more, got {self.activation_checkpoint_every}"
            )
        if self.learning_rate <= 0:
            raise HeedfulError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.kl_weight <= 1.0:
            raise HeedfulError(f"kl_weight must be between 0 and 1, got {self.kl_weight}")
        if self.log_every < 1:
            raise HeedfulError(f"log_every must be at least 1, got {self.log_every}")
        for name in self.log_with or []:
            if name not in TRACKERS:
                raise HeedfulError(f"unknown tracker '{name}' in log_with; expected one of {', '.join(TRACKERS)}")
            if importlib.util.find_spec(TRACKERS[name]) is None:
                raise HeedfulError(f"log_with {name}: {TRACKERS[name]} is not installed; pip install {TRACKERS[name]}")


@dataclass
class TrainDataConfig:
    """The tasks trained on and the training instances drawn from them."""

    tasks: str
    """Task spec, as for eval (e.g. superni:PATH[@SPLITFILE])."""
    split: Literal["train", "val", "test"] = "train"
    """Split the training instances come from."""
    budget: str = "all"
    """Training instances per task: 100, 200, 1000, all, or a fraction like 0.25."""
    sample: Literal["first", "random"] = "first"
    """Which instances a budget keeps: the first N in file order (Gupta 2023), or a seeded random N."""
    setting: Literal["stl", "mtl"] = "mtl"
    """stl: one model per task (own subfolder); mtl: one model on the mixture."""
    max_source_length: int = 1024
    """Prompt tokens kept (demonstrations dropped first)."""
    max_target_length: int = 128
    """Target tokens kept (EOS included)."""


@dataclass
class TrainPromptConfig:
    """The instructions training prompts are built from, and their alteration."""

    instructions: str = "superni:def+pos2"
    """One prompt encoding (superni:def+pos2, superni:none, superni:gupta...), or any instruction spec as for
    eval, which trains on every instance under every instruction (the first a task has is the reference)."""
    kinds: list[str] | None = None
    """Keep only instructions of these kinds."""
    collections: list[str] | None = None
    """Keep only instructions of these collections."""
    alteration: Literal["none", "simplified", "delusive"] = "none"
    """Alter the training prompts' instruction (Kung & Peng 2023); needs one superni: encoding."""
    label_spaces: str | None = None
    """Label-space file (SuperNI label_space.json format) for the alteration."""

    def encoding(self) -> str | None:
        """The prompt encoding when ``instructions`` is exactly one ``superni:ENCODING``, else None."""
        prefix, _, name = self.instructions.partition(":")
        return name if prefix == "superni" and name in ENCODING_NAMES else None


@dataclass
class TrainEvalConfig:
    """Evaluation of each trained model, at the end and optionally during training."""

    enabled: bool = True
    """Evaluate each trained model at the end."""
    every: int | None = None
    """Also evaluate every N optimizer steps (into eval-step-N/)."""
    instructions: str | None = None
    """Instruction spec evaluated (None: the training prompts' instructions)."""
    split: Literal["train", "val", "test"] = "test"
    """Split evaluated."""
    limit: int | None = None
    """Seeded sample of at most N instances per task."""
    max_new_tokens: int = 128
    """Generation length."""
    batch_size: int = 8
    """Evaluation batch size (does not change results)."""


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored with it; its id is the hash of all but where it goes).

    Defaults follow Tk-Instruct and Gupta 2023: SuperNI ``def+pos2`` prompts, 1024 source
    and 128 target tokens, learning rate 5e-5, 2 epochs, constant schedule.
    """

    data: TrainDataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    prompts: TrainPromptConfig = field(default_factory=TrainPromptConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    eval: TrainEvalConfig = field(default_factory=TrainEvalConfig)
    init_from: str | None = None
    """A previous heedful train run folder to start from (pre-finetuning)."""
    seed: int = 0
    """Seed for the budget sample, the data order, alterations and initialisation."""
    resume: bool = True
    """Continue an interrupted run in OUT from its last checkpoint."""
    out: str = "runs/train"
    """Output folder (train_config.json, heedful.sqlite, checkpoints/, final/, evaluations, config.yaml)."""

    def identity(self) -> dict[str, Any]:
        """The settings that change the trained weights and their evaluation: those that differ from
        their defaults (so a later version's new option keeps old run ids), less where the run goes,
        whether it resumes, the evaluation's batch size, the thread count and the trackers it logs to."""
        skip = ("out", "resume", "eval.batch_size", "model.threads", *REPORTING)
        return {k: v for k, v in non_default(self).items() if k not in skip}

    def validate(self) -> None:
        if not self.data.tasks:
            raise HeedfulError("data.tasks is empty: give a task spec (e.g. superni:PATH)")
        if self.method.name not in METHODS:
            raise HeedfulError(f"unknown method.name '{self.method.name}'; expected one of {', '.join(METHODS)}")
        if self.prompts.alteration not in ALTERATIONS:
            raise HeedfulError(
                f"unknown prompts.alteration '{self.prompts.alteration}'; expected one of {', '.join(ALTERATIONS)}"
            )
        parse_budget(self.data.budget)
        if self.data.split not in SPLITS:
            raise HeedfulError(f"unknown data.split '{self.data.split}'; expected one of {', '.join(SPLITS)}")
        if self.model.adapter or self.model.chat:
            raise HeedfulError("model.adapter and model.chat are for evaluation; start from a trained run with init_from")
        self.loop.validate()
        if self.prompts.alteration != "none" and self.prompts.encoding() is None:
            raise HeedfulError("prompts.alteration alters one superni: encoding; prompts.instructions is not one")
        if self.loop.kl_weight > 0 and self.prompts.encoding() is not None:
            raise HeedfulError(
                "loop.kl_weight aligns instructions: give two or more per task in prompts.instructions"
            )


ALTERATIONS: tuple[str, ...] = ("none", "simplified", "delusive")
