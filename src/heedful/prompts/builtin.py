"""Each task's own instruction (the "designer" instruction) as a collection record.

Expressed as an ordinary :class:`Instruction`, the task designer's prompt goes through
the same renderer, demonstrations and perturbations as every collected instruction:

* BIG-bench JSON tasks: BIG-bench's zero-shot prompt (``task_prefix``,
  ``example_input_prefix``, the input, the choices after ``choice_prefix`` when
  ``append_choices_to_input``, ``example_output_prefix``); the answer is the option text.
  The choices are shown in the instance's option order (BIG-bench itself shows them
  sorted and permuted with its seed; see ``heedful.prompts.bigbench``).
* SuperNI tasks: Tk-Instruct's ``def`` encoding (definition, then
  ``Now complete the following example -\\nInput: ...\\nOutput: ``).
* MMLU: the prompt of Hendrycks et al. as lm-evaluation-harness writes it
  (``The following are multiple choice questions (with answers) about SUBJECT.\\n\\n``,
  the stripped question, ``\\nA. ...`` for each option, ``\\nAnswer:``), answered by letter.
* lm-evaluation-harness tasks: lm-eval's zero-shot context, ``description`` + the input
  (``doc_to_text``) + ``target_delimiter``; the answer is the option text, whose join
  reproduces lm-eval's continuation (see ``heedful.tasks.lmeval``).
* Any other task: its definition, a blank line, then the input (just the input when the
  task has no definition).
"""

from __future__ import annotations

from heedful.errors import HeedfulError
from heedful.prompts.gupta import GUPTA_ENCODINGS, encode_gupta
from heedful.prompts.instruction import Instruction, OptionsSpec
from heedful.prompts.safe_format import escape_braces
from heedful.prompts.superni import ENCODING_NAMES, SUPERNI_ENCODINGS, encode_superni
from heedful.tasks.types import BigBenchFormat, Task, TaskType

COLLECTION = "builtin"
DESIGNER_ID = "designer"
# Captures the input without surrounding whitespace as the {input} field (str.strip()).
_STRIP_INPUT = r"\s*(?P<input>.*?)\s*"
# Marks where the input goes when an encoder's prompt is turned into a template.
_SENTINEL = "\x00HEEDFUL-INPUT\x00"


def designer_instruction(task: Task) -> Instruction:
    """The task designer's own prompt for ``task`` as an instruction (kind ``designer``)."""
    if task.bigbench_format is not None:
        return _bigbench(task, task.bigbench_format)
    if task.source == "superni":
        return _superni(task)
    if task.source == "mmlu":
        return _mmlu(task)
    if task.source == "lmeval":
        return _lmeval(task)
    return _definition(task)


def builtin_instructions(task: Task) -> list[Instruction]:
    """heedful's built-in instructions for ``task``: its designer instruction."""
    return [designer_instruction(task)]


def _make(task: Task, template: str, fmt: str, **kw: object) -> Instruction:
    return Instruction(
        id=DESIGNER_ID,
        template=template,
        kind="designer",
        collection=COLLECTION,
        task=task.name,
        origin=f"builtin:{fmt}",
        **kw,  # type: ignore[arg-type]
    )


def _bigbench(task: Task, fmt: BigBenchFormat) -> Instruction:
    has_options = task.type is TaskType.MULTIPLE_CHOICE or any(inst.options is not None for inst in task.instances)
    show = has_options and fmt.append_choices_to_input
    template = (
        escape_braces(fmt.task_prefix)
        + escape_braces(fmt.example_input_prefix)
        + "{input}"
        + ("{options}" if show else "")
        + escape_braces(fmt.example_output_prefix)
    )
    options = OptionsSpec(field="options", item=escape_braces(fmt.choice_prefix) + "{text}") if show else None
    return _make(task, template, "bigbench", options=options, answer="text")


def _superni(task: Task) -> Instruction:
    template, extra = _superni_template(task, "def")
    return _make(task, template, "superni:def", answer="text", **extra)


def superni_instruction(task: Task, encoding: str = "def") -> Instruction:
    """A SuperNI encoding (``def``, ``def+pos2``, ``none``...) of ``task`` as an instruction.

    Renders byte-identical to ``heedful.prompts.superni.encode_superni(task, input,
    encoding)`` (without token truncation). Kind ``designer`` (``none`` for the
    encoding without definition or examples), collection ``superni``.
    """
    if encoding not in SUPERNI_ENCODINGS:
        raise HeedfulError(f"unknown SuperNI encoding '{encoding}'; expected one of {', '.join(SUPERNI_ENCODINGS)}")
    template, extra = _superni_template(task, encoding)
    return Instruction(
        id=f"superni/{encoding}",
        template=template,
        kind="designer" if encoding != "none" else "none",
        collection="superni",
        task=task.name,
        answer="text",
        origin=f"builtin:superni:{encoding}",
        encoding=encoding,
        **extra,  # type: ignore[arg-type]
    )


def encoding_instruction(task: Task, encoding: str) -> Instruction:
    """A SuperNI (``def+pos2``...) or Gupta (``gupta``, ``gupta-noinst``) encoding as an instruction.

    Renders byte-identical to ``heedful.prompts.superni.encode(task, input, encoding)``.
    """
    if encoding not in ENCODING_NAMES:
        raise HeedfulError(f"unknown encoding '{encoding}': use one of {', '.join(ENCODING_NAMES)}")
    if encoding not in GUPTA_ENCODINGS:
        return superni_instruction(task, encoding)
    # Gupta's format uses the input verbatim, so one fixed template is exact.
    rendered = encode_gupta(task, _SENTINEL, with_instruction=encoding == "gupta")
    return Instruction(
        id=f"gupta/{encoding}",
        template=escape_braces(rendered).replace(_SENTINEL, "{input}"),
        kind="designer" if encoding == "gupta" else "none",
        collection="gupta",
        task=task.name,
        answer="text",
        origin=f"builtin:{encoding}",
        encoding=encoding,
    )


def _superni_template(task: Task, encoding: str) -> tuple[str, dict[str, object]]:
    # Built from the encoder itself, so the template follows any change to it. The
    # encoder strips the input and appends "." unless it ends in punctuation: the
    # extract pattern does the strip, the input_period field the period.

    rendered = encode_superni(task, _SENTINEL, encoding)
    marker = _SENTINEL + "."  # the sentinel never ends in punctuation, so "." follows it
    if rendered.count(marker) != 1 or rendered.count(_SENTINEL) != 1:
        raise RuntimeError(f"SuperNI '{encoding}' encoding no longer places the input once as 'Input: <input>.'")
    template = escape_braces(rendered).replace(marker, "{input}{input_period}")
    extra = {"extract": _STRIP_INPUT, "extra_fields": {"input_period": "input_period"}}
    return template, extra


def mmlu_subject(task: Task) -> str:
    """The MMLU subject of ``task`` in words (``high_school_us_history`` -> ``high school us history``)."""
    subject = str(task.metadata.get("subject") or task.name)
    for prefix in ("mmlu:", "mmlu_", "mmlu/"):
        if subject.startswith(prefix):
            subject = subject[len(prefix):]
    return subject.replace("_", " ").strip()


def _mmlu(task: Task) -> Instruction:
    header = f"The following are multiple choice questions (with answers) about {mmlu_subject(task)}.\n\n"
    template = escape_braces(header) + "{input}{options}\nAnswer:"
    return _make(
        task,
        template,
        "mmlu",
        task_type="QA",
        extract=_STRIP_INPUT,
        options=OptionsSpec(field="options", item="\n{letter}. {text}"),
        answer="letter",
    )


def _lmeval(task: Task) -> Instruction:
    description = escape_braces(str(task.metadata.get("description") or ""))
    delimiter = escape_braces(str(task.metadata.get("target_delimiter", " ")))
    return _make(task, description + "{input}" + delimiter, "lmeval", answer="text")


def _definition(task: Task) -> Instruction:
    definition = task.definition.strip()
    template = escape_braces(definition) + "\n\n{input}" if definition else "{input}"
    return _make(task, template, "definition", answer="text")
