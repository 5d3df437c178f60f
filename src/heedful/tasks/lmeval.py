"""lm-evaluation-harness multiple-choice tasks as heedful :class:`Task` objects.

``lmeval:NAME[,NAME...][@INCLUDE_PATH]`` names tasks, groups (``mmlu`` expands to its
subjects) or tags of lm-eval's own registry (``lm-eval ls tasks``), plus the task YAMLs
under ``INCLUDE_PATH``. lm-eval itself loads each task and renders its documents, so a
task's ``process_docs``, Jinja templates and Python functions apply unchanged. The
documents are the ones lm-eval's evaluator scores (``eval_docs``: the test split, else the
validation split); each becomes a ``test`` instance with input ``doc_to_text(doc)``,
options ``doc_to_choice(doc)`` and gold ``doc_to_target(doc)`` (a choice index or a
choice string; a one-element list is its element). Written against lm-eval 0.4.13
(``TaskManager.load``, which flattens groups; ``get_task_dict`` is deprecated there).

The task's own prompt is its designer instruction (``heedful.prompts.builtin``):
``description + {input} + target_delimiter``, recorded in ``metadata``. lm-eval scores the
pair ``(description + text, target_delimiter + choice)``; heedful scores ``(prompt, join +
option)`` where ``join`` is a space unless the prompt ends in whitespace or is empty. Both
then move the context's trailing whitespace into the continuation (lm-eval's
``_encode_pair``, ``heedful.models.encoding``), so the pairs tokenise identically when

* the delimiter is whitespace (``" "``, ``"\\n"``, ``""``) and the prompt ends in whitespace
  or is empty: the options are the choices;
* else (``target_delimiter: ""`` after a prompt ending in a word, as in ``sycophancy``):
  every choice must begin with a space, which heedful's join supplies, so each option is
  its choice without that space. A choice glued to the prompt is refused.

Deliberate differences and limits (what is refused gets a one-line error):

* zero-shot only: lm-eval's few-shot context (and a task's default ``num_fewshot``) is
  not reproduced; ``--prompts.shots`` adds heedful's own demonstrations instead.
* only ``output_type: multiple_choice``; not tasks with one context per choice
  (``winogrande``), a ``gen_prefix``, a delimiter with non-whitespace text, a description
  that differs between documents, or documents with several golds.
* accuracy is the argmax of summed log-likelihoods, lm-eval's ``acc``; a task whose own
  ``process_results`` defines ``acc`` otherwise is scored the standard way.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.tasks.types import Instance, Task, TaskType

SOURCE = "lmeval"
_FIND_NAMES = "list the names with `lm-eval ls tasks` (add --include_path DIR for your own YAMLs)"


def load_lmeval(names: Sequence[str], include_path: str | None = None) -> list[Task]:
    """The multiple-choice tasks that lm-eval task, group or tag ``names`` stand for, in lm-eval's order.

    ``include_path`` is a folder of extra task YAMLs, as lm-eval's
    ``--include_path``. Raises :class:`HeedfulError` for an unknown name, a task lm-eval
    cannot load, or a task heedful cannot score as lm-eval does (see the module doc).
    """
    manager = _task_manager(include_path)
    for name in names:
        if name not in manager.all_tasks and not Path(name).is_file():
            where = f" nor under {include_path}" if include_path else ""
            raise HeedfulError(f"unknown lm-eval task '{name}' (not in lm-eval's registry{where}): {_FIND_NAMES}")
    try:
        loaded = manager.load(list(names))["tasks"]
    except Exception as exc:  # datasets, Jinja, YAML: lm-eval's many errors become one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise HeedfulError(f"lm-eval could not load '{','.join(names)}': {type(exc).__name__}: {first}") from exc
    return [lmeval_task(name, task) for name, task in loaded.items()]


def _task_manager(include_path: str | None) -> Any:
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise HeedfulError("lmeval: task specs need lm-evaluation-harness: pip install lm-eval") from None
    if include_path is not None and not Path(include_path).exists():
        raise HeedfulError(f"lmeval: include path {include_path} does not exist")
    return TaskManager(include_path=include_path)


def lmeval_task(name: str, lm_task: Any) -> Task:
    """One loaded lm-eval task (``lm_eval.api.task.Task``) as a heedful multiple-choice task."""
    config = lm_task.config
    output_type = getattr(lm_task, "OUTPUT_TYPE", None) or getattr(config, "output_type", None)
    if output_type != "multiple_choice":
        raise HeedfulError(f"lm-eval task '{name}' is {output_type}: heedful loads only output_type multiple_choice tasks")
    if getattr(lm_task, "multiple_input", 0):
        raise HeedfulError(
            f"lm-eval task '{name}' scores one context per choice (doc_to_text gives a choice index, as in "
            "winogrande): heedful scores options after one prompt"
        )
    if getattr(config, "gen_prefix", None):
        raise HeedfulError(f"lm-eval task '{name}' has a gen_prefix ({config.gen_prefix!r}): not supported")
    delimiter = str(getattr(config, "target_delimiter", " "))
    if delimiter.strip():
        raise HeedfulError(
            f"lm-eval task '{name}': target_delimiter {delimiter!r} is not whitespace; heedful puts only "
            "whitespace between a prompt and its answer"
        )
    split = config.test_split if lm_task.has_test_docs() else config.validation_split
    description: str | None = None
    instances: list[Instance] = []
    for i, doc in enumerate(lm_task.eval_docs):
        where = f"lm-eval task '{name}' ({split} document {i})"
        text = lm_task.doc_to_text(doc)
        desc = str(lm_task.resolve_field(doc, getattr(config, "description", "")) or "")
        if description is None:
            description = desc
        elif desc != description:
            raise HeedfulError(f"{where}: its description differs from document 0's; heedful needs one per task")
        # lm-eval's own zero-shot context is the ground truth for what the prompt holds.
        context = lm_task.fewshot_context(doc=doc, num_fewshot=0)
        if not isinstance(text, str) or context != desc + text:
            raise HeedfulError(f"{where}: lm-eval's context is not description + doc_to_text; not supported")
        choices = [str(c) for c in lm_task.doc_to_choice(doc)]
        gold = _gold(lm_task.doc_to_target(doc), choices, where)
        options = _options(desc + text + delimiter, choices, where)
        instances.append(Instance(id=str(i), input=text, references=(options[gold],), options=options, gold=gold))
    if not instances:
        raise HeedfulError(f"lm-eval task '{name}' has no {split} documents")
    return Task(
        name=name,
        type=TaskType.MULTIPLE_CHOICE,
        instances=instances,
        definition=(description or "").strip(),
        metric="accuracy",
        source=SOURCE,
        metadata={"lm_eval_task": name, "lm_eval_split": split, "description": description, "target_delimiter": delimiter},
    )


def _options(prompt: str, choices: list[str], where: str) -> tuple[str, ...]:
    """The options that heedful's answer join turns into lm-eval's continuations (module doc)."""
    if not choices:
        raise HeedfulError(f"{where}: doc_to_choice gives no choices")
    # heedful.prompts.demos.answer_join, which this layer cannot import: a space unless the prompt ends in whitespace.
    if not prompt or prompt[-1].isspace():
        return tuple(choices)
    glued = [c for c in choices if not c.startswith(" ")]
    if glued:
        raise HeedfulError(
            f"{where}: lm-eval scores choice {glued[0]!r} right after {prompt[-12:]!r} with no space "
            "(target_delimiter ''); heedful always puts a space after a prompt that does not end in whitespace"
        )
    return tuple(c[1:] for c in choices)


def _gold(target: Any, choices: list[str], where: str) -> int:
    """The choice index of lm-eval's ``doc_to_target``: an index, a choice string, or a one-element list of either."""
    if isinstance(target, list):
        if len(target) != 1:
            raise HeedfulError(f"{where}: {len(target)} gold answers {target!r}; heedful scores one gold per instance")
        target = target[0]
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        if 0 <= int(target) < len(choices):
            return int(target)
        raise HeedfulError(f"{where}: gold index {target} is outside the {len(choices)} choices")
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    raise HeedfulError(f"{where}: gold {target!r} is neither a choice index nor one of the choices {choices!r}")
