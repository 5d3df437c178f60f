"""``heedful paraphrase``: generate, filter and cache paraphrases of tasks' instructions."""

from __future__ import annotations

from heedful.perturbations.config import ParaphraseConfig
from heedful.perturbations.label_space import load_label_space_file
from heedful.perturbations.variants import base_instructions, resolve_label_space
from heedful.progress import stdout_console
from heedful.prompts.collection import save_collection
from heedful.prompts.sources import InstructionSources
from heedful.tasks.spec import load_tasks

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.

CONFIG = ParaphraseConfig


def run(config: ParaphraseConfig) -> None:
    """Paraphrase each task's base instructions K times with an instruct model and save them as a collection.

    Paraphrases keep every placeholder and every label the original mentions, and have
    embedding similarity >= --threshold. SuperNI encodings have their definition
    paraphrased. Evaluate them with ``heedful eval --prompts.perturb [paraphrase:FILE]``.
    """
    from heedful.perturbations.paraphrase import generate_paraphrases

    prompts = config.prompts
    spaces = load_label_space_file(prompts.label_spaces) if prompts.label_spaces else None
    sources = InstructionSources.parse(prompts.instructions, kinds=prompts.kinds, collections=prompts.collections)
    backend = None
    if not config.endpoint:
        from heedful.models.loading import load_configured

        backend = load_configured(config.model)
    collected = []
    for task in load_tasks(config.data.tasks, seed=config.seed):
        labels, _, _ = resolve_label_space(task, spaces)
        for base in base_instructions(sources.for_task(task)):
            found = generate_paraphrases(
                base, config.k, seed=config.seed, task=task, label_space=labels, backend=backend,
                endpoint=config.endpoint, model_name=config.model.name, threshold=config.threshold,
            )
            collected.extend(found)
            stdout_console().print(f"{task.name}\t{base.id}\t{len(found)}/{config.k} paraphrases kept")
    save_collection(collected, config.out)
    stdout_console().print(f"wrote {len(collected)} paraphrases to {config.out}")
