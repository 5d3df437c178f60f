"""What a training run is: its settings, stated once (stored with the run, and its id's source).

Kept apart from the loop and the recipes, which load torch, so the CLI can build and check
a config without importing them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from heedful.errors import HeedfulError
from heedful.prompts.superni import ENCODING_NAMES
from heedful.tasks.sampling import parse_budget
from heedful.tasks.types import SPLITS
from heedful.train.methods import METHODS, MethodConfig

SCHEDULES: tuple[str, ...] = ("constant", "linear")


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
    """

    learning_rate: float = 5e-5
    epochs: int = 2
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    group_by_length: bool = True
    save_every: int | None = None
    keep_checkpoints: int = 2
    mixed_precision: str = "no"
    loss: str = "output"
    activation_checkpoint_every: int | None = None
    kl_weight: float = 0.0

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


SETTINGS: tuple[str, ...] = ("stl", "mtl")
PERTURBATIONS: tuple[str, ...] = ("none", "simplified", "delusive")


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored with its results).

    Defaults follow Tk-Instruct and Gupta 2023: SuperNI ``def+pos2`` prompts, 1024 source
    and 128 target tokens, and (in ``loop``) learning rate 5e-5, 2 epochs, constant schedule.
    """

    model: str = "smollm2-135m-instruct"
    tasks: str = ""
    encoding: str = "def+pos2"
    setting: str = "mtl"
    budget: str = "all"
    seed: int = 0
    method: str = "full"
    init_from: str | None = None
    perturb: str = "none"
    label_space_file: str | None = None
    # Instruction spec (as ``heedful eval --instructions``) rendering each instance under
    # every instruction instead of ``encoding``; ``instruction_kinds`` keeps only those kinds.
    instructions: str | None = None
    instruction_kinds: list[str] | None = None
    train_split: str = "train"
    max_source_length: int = 1024
    max_target_length: int = 128
    # optimisation (its seed is replaced by ``seed`` above: one seed per run)
    loop: LoopConfig = field(default_factory=LoopConfig)
    gradient_checkpointing: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    # PEFT
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None
    num_virtual_tokens: int = 20
    # evaluation at the end (and every ``eval_every`` optimizer steps)
    evaluate: bool = True
    eval_every: int | None = None
    eval_instructions: str | None = None
    eval_split: str = "test"
    eval_limit: int | None = None
    eval_max_new_tokens: int = 128
    eval_batch_size: int = 8

    def validate(self) -> None:
        if self.setting not in SETTINGS:
            raise HeedfulError(f"unknown setting '{self.setting}'; expected stl or mtl")
        if self.method not in METHODS:
            raise HeedfulError(f"unknown method '{self.method}'; expected one of {', '.join(METHODS)}")
        if self.perturb not in PERTURBATIONS:
            raise HeedfulError(f"unknown perturbation '{self.perturb}'; expected one of {', '.join(PERTURBATIONS)}")
        if self.encoding not in ENCODING_NAMES:
            raise HeedfulError(f"unknown encoding '{self.encoding}'; expected one of {', '.join(ENCODING_NAMES)}")
        parse_budget(self.budget)
        if self.train_split not in SPLITS:
            raise HeedfulError(f"unknown train split '{self.train_split}'; expected one of {', '.join(SPLITS)}")
        self.loop.validate()
        if self.instructions and self.perturb != "none":
            raise HeedfulError("--perturb alters --encoding prompts; it cannot be combined with --instructions")
        if self.loop.kl_weight > 0 and not self.instructions:
            raise HeedfulError("--kl-weight aligns instructions: give them with --instructions (two or more per task)")

    def method_config(self) -> MethodConfig:
        targets = tuple(self.lora_target_modules) if self.lora_target_modules else None
        return MethodConfig(self.lora_r, self.lora_alpha, self.lora_dropout, targets, self.num_virtual_tokens)

    def loop_config(self) -> LoopConfig:
        return dataclasses.replace(self.loop, seed=self.seed)
