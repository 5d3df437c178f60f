"""Configs of the commands that evaluate and then analyse: robustness and representations."""

from __future__ import annotations

from dataclasses import dataclass, field

from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig

# Built-in default sample: bbl-mc has 47 tasks or subtasks; 3 instances each under the designer
# and built-in phrasings make about 1,400 prompts, about 4 min on 2 CPU cores with SmolLM2.
DEFAULT_LIMIT = 3


def _phrasings() -> PromptConfig:
    return PromptConfig(instructions="designer,heedful")


def _sample() -> DataConfig:
    return DataConfig(limit=DEFAULT_LIMIT)


@dataclass
class RobustnessConfig(EvalConfig):
    """An evaluation across instruction phrasings, summarised by instruction kind with bootstrap CIs."""

    data: DataConfig = field(default_factory=_sample)
    prompts: PromptConfig = field(default_factory=_phrasings)
    n_bootstrap: int = 1000
    """Bootstrap resamples for the 95% confidence intervals."""
    from_run: str | None = None
    """Summarise this finished eval output folder instead of running a model (it is read, not written)."""
    out: str = "runs/robustness"
    """Output folder (the evaluation's files, robustness.json, config.yaml)."""


@dataclass
class RepresentationsConfig:
    """First-decoded-token representations of every prompt and their distances (Sun et al. 2023, 4.5)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=_sample)
    prompts: PromptConfig = field(default_factory=_phrasings)
    layer: int = -2
    """Hidden-state layer: -2 the penultimate (Sun et al.), -1 the last, 0 the embeddings."""
    reference_kinds: list[str] = field(default_factory=lambda: ["observed", "designer"])
    """Instruction kinds that distances are measured to."""
    batch_size: int = 8
    """Prompts per forward pass (does not change results)."""
    seed: int = 0
    """Seed for sampling instances, demonstrations and option order."""
    out: str = "runs/representations"
    """Output folder (representations.json, vectors.npz, config.yaml)."""

    def prompt_plan(self) -> EvalConfig:
        """The evaluation whose prompts are encoded: same model, data and prompts."""
        return EvalConfig(
            model=self.model, data=self.data, prompts=self.prompts,
            scoring=ScoringConfig(batch_size=self.batch_size), seed=self.seed, out=self.out,
        )


# The default audit: BIG-bench Lite choice tasks on which SmolLM2-135M-Instruct is clearly above
# chance with its designer instruction (measured: see README, "The audit"), a sample that
# fits in about 5 minutes on 2 CPU cores.
DEFAULT_AUDIT_TASKS = "bigbench:winowhy,bbq_lite_json:bbq_lite_json_age_disambig,vitaminc_fact_verification"
DEFAULT_AUDIT_LIMIT = 25


def _audit_sample() -> DataConfig:
    return DataConfig(tasks=DEFAULT_AUDIT_TASKS, limit=DEFAULT_AUDIT_LIMIT)


@dataclass
class AuditConfig:
    """Does a model read its instructions? Sensitivity to phrasing and to format, reliance on the instruction."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=_audit_sample)
    phrasings: str = "designer,heedful"
    """The designer instruction and its equivalent phrasings: heedful (built-in), collection .jsonl files."""
    formats: int = 6
    """Layouts of the designer instruction scored on every instance: a frozen, seeded sample of the format
    grammar (0: none)."""
    budget: int | None = None
    """Model calls for a bandit search of the best and the worst layout in the whole grammar (None: no search)."""
    reliance: list[str] = field(default_factory=lambda: ["none", "nonsense", "negated", "simplified", "delusive"])
    """Alterations of the designer instruction compared with it on the same instances."""
    label_spaces: str | None = None
    """Label-space file (SuperNI label_space.json format) for simplified and delusive."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    n_bootstrap: int = 1000
    """Bootstrap resamples for the 95% confidence intervals."""
    seed: int = 0
    """Seed for sampling instances and formats, perturbations, the bandit search and the bootstrap."""
    report: bool = True
    """Also write the report page (OUT/report/index.html)."""
    out: str = "runs/audit"
    """Output folder (the evaluation's files, formats.jsonl, audit.json, report/)."""

    def evaluation(self, formats_file: str | None) -> EvalConfig:
        """The one evaluation behind the measures: phrasings, formats and alterations on the same instances."""
        instructions = self.phrasings + (f",{formats_file}" if formats_file else "")
        return EvalConfig(model=self.model, data=self.data, scoring=self.scoring, seed=self.seed, out=self.out,
                          prompts=PromptConfig(instructions=instructions, perturb=list(self.reliance) or None,
                                               label_spaces=self.label_spaces))
