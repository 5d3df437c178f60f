"""``heedful paraphrase``: generate, filter and cache paraphrases of tasks' instructions."""

from __future__ import annotations

from heedful.perturbations.config import ParaphraseConfig
from heedful.progress import stdout_console

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.3 s, not 2 s.

CONFIG = ParaphraseConfig


def run(config: ParaphraseConfig) -> None:
    """Paraphrase each task's base instructions K times with an instruct model and save them as a collection.

    Paraphrases keep every placeholder and every label the original mentions, and have
    embedding similarity >= --threshold. SuperNI encodings have their definition
    paraphrased. Evaluate them with ``heedful eval --prompts.perturb paraphrase:FILE``.
    """
    from heedful.studies.runners import run_paraphrase

    kept = run_paraphrase(config)
    for task, instruction_id, n in kept:
        stdout_console().print(f"{task}\t{instruction_id}\t{n}/{config.k} paraphrases kept")
    stdout_console().print(f"wrote {sum(n for *_, n in kept)} paraphrases to {config.out}")
