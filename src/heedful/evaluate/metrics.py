"""Generation metrics as SuperNI computes them: exact match, ROUGE-L, and their aggregation.

Reproduces ``compute_metrics.py`` of Tk-Instruct (yizhongw/Tk-Instruct, ``src/``) and
``eval/automatic/evaluation.py`` of allenai/natural-instructions:

- ``normalize_answer`` (:mod:`heedful.tasks.normalize`) is SQuAD v1.1's normaliser *without* article removal: lowercase,
  drop ASCII punctuation (``string.punctuation``), collapse whitespace.
- ROUGE-L is the F-measure of ``rouge_score``'s ``RougeScorer(['rougeL'], use_stemmer=True)``
  with its default tokenizer (lowercase, ``[a-z0-9]+`` tokens, Porter stemming). That
  tokenizer drops every non-ASCII letter, so Chinese, Arabic or Cyrillic text scores 0.
  For this reason SuperNI's cross-lingual track swaps in GPT-2's byte-level BPE with the
  leading "Ġ" stripped from each token (and no stemmer); :class:`XlingualTokenizer`
  reproduces it.
- Per-instance scores take the maximum over the instance's references; task, category
  and overall scores are means over *instances* (``compute_grouped_metrics`` groups
  instances, so a category's score weighs its tasks by their instance counts).

Scores here are fractions in [0, 1], the unit of every score heedful stores; the reference
reports percent, which :func:`aggregate` gives with ``percent=True`` (``heedful metrics``).
The reference rounds every reported value to 4 decimals; here rounding is left to display
(``heedful metrics`` rounds its JSON output), so :func:`aggregate` returns unrounded means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from heedful.tasks.normalize import normalize_answer
from heedful.tasks.superni import EXACT_MATCH_CATEGORIES

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer

METRICS = ("exact_match", "rougeL")


class RougeTokenizer(Protocol):
    """Anything ``rouge_score`` accepts as a tokenizer: an object with ``tokenize(text)``."""

    def tokenize(self, text: str) -> list[str]: ...


def exact_match(prediction: str, reference: str) -> float:
    """1.0 if prediction and reference are equal after :func:`normalize_answer`, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def _rouge_scorer(**kwargs: Any) -> RougeScorer:
    # rouge_score pulls in nltk (seconds); importing it here keeps every CLI command fast.
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], **kwargs)


@lru_cache(maxsize=1)
def _default_scorer() -> RougeScorer:
    # Building a scorer is not free (it instantiates a Porter stemmer); the reference builds
    # one per call, which gives identical scores.
    return _rouge_scorer(use_stemmer=True)


def rouge_l(prediction: str, reference: str, *, tokenizer: RougeTokenizer | None = None) -> float:
    """ROUGE-L F-measure in [0, 1].

    With ``tokenizer=None`` this is SuperNI's default (English) track; pass an
    :class:`XlingualTokenizer` for its cross-lingual track.
    """
    if tokenizer is None:
        scorer = _default_scorer()
    else:
        scorer = _rouge_scorer(tokenizer=tokenizer)
    return scorer.score(target=reference, prediction=prediction)["rougeL"].fmeasure


def max_over_references(
    metric: Callable[[str, str], float], prediction: str, references: Sequence[str]
) -> float:
    """The best score of ``prediction`` against any of its references."""
    if not references:
        raise ValueError("max_over_references needs at least one reference")
    return max(metric(prediction, reference) for reference in references)


def score_generation(
    prediction: str, references: Sequence[str], *, tokenizer: RougeTokenizer | None = None
) -> dict[str, float]:
    """One instance's ``exact_match`` and ``rougeL``, each a fraction in [0, 1]."""
    em = max_over_references(exact_match, prediction, references)
    rl = max_over_references(
        lambda p, r: rouge_l(p, r, tokenizer=tokenizer), prediction, references
    )
    return {"exact_match": em, "rougeL": rl}


def accuracy(correct: Sequence[bool | int]) -> float:
    """Fraction (0..1) of true / 1 entries, on the same scale as the generation metrics."""
    if len(correct) == 0:
        raise ValueError("accuracy of an empty sequence is undefined")
    for value in correct:
        if value not in (0, 1):
            raise ValueError(f"accuracy expects booleans or 0/1, got {value!r}")
    return sum(int(v) for v in correct) / len(correct)


def _category_key(category: str) -> str:
    # Tk-Instruct keys categories as "_".join(name.lower().split()).
    return "_".join(category.lower().split())


_EXACT_MATCH_KEYS = frozenset(_category_key(c) for c in EXACT_MATCH_CATEGORIES)


def superni_category_metric(category: str) -> str:
    """SuperNI's headline metric for a category: ``exact_match`` or ``rougeL``.

    Matching ignores case, spaces and underscores ("Textual Entailment" ==
    "textual_entailment"); categories outside Tk-Instruct's exact-match list get ROUGE-L,
    the metric SuperNI reports overall.
    """
    return "exact_match" if _category_key(category) in _EXACT_MATCH_KEYS else "rougeL"


class _Accumulator:
    """Running sums in record order, so percent means equal the reference's ``100.0 * sum / n``."""

    def __init__(self) -> None:
        self.exact_match = 0.0
        self.rougeL = 0.0
        self.n = 0

    def add(self, em: float, rl: float) -> None:
        self.exact_match += em
        self.rougeL += rl
        self.n += 1

    def result(self, scale: float) -> dict[str, Any]:
        return {
            "exact_match": scale * self.exact_match / self.n,
            "rougeL": scale * self.rougeL / self.n,
            "n": self.n,
        }


def aggregate(
    records: Iterable[Mapping[str, Any]],
    *,
    category_metric: Callable[[str], str] | None = None,
    tokenizer: RougeTokenizer | None = None,
    percent: bool = False,
) -> dict[str, Any]:
    """Score predictions and average them per task, per category and overall.

    Each record has ``task``, ``id``, ``prediction``, ``references`` (non-empty list of
    strings) and optionally ``category``. Returns::

        {"tasks": {task: {"exact_match", "rougeL", "n"}},
         "categories": {category: {"exact_match", "rougeL", "n", "metric"}},
         "overall": {"exact_match", "rougeL", "n"}}

    Scores are unrounded fractions (0..1) averaged over instances, or with ``percent`` the
    reference's percentages (``100.0 * sum / n``, to the last bit). ``metric`` names the
    category's headline metric (``category_metric``, by default SuperNI's choice).
    Records without a category count in their task and overall only.
    """
    pick_metric = category_metric or superni_category_metric
    tasks: dict[str, _Accumulator] = {}
    categories: dict[str, _Accumulator] = {}
    overall = _Accumulator()
    for record in records:
        prediction, references = record["prediction"], record["references"]
        em = max_over_references(exact_match, prediction, references)
        rl = max_over_references(
            lambda p, r: rouge_l(p, r, tokenizer=tokenizer), prediction, references
        )
        tasks.setdefault(record["task"], _Accumulator()).add(em, rl)
        category = record.get("category")
        if category:
            categories.setdefault(category, _Accumulator()).add(em, rl)
        overall.add(em, rl)
    if overall.n == 0:
        raise ValueError("aggregate needs at least one record")
    scale = 100.0 if percent else 1.0
    return {
        "tasks": {task: acc.result(scale) for task, acc in tasks.items()},
        "categories": {
            cat: {**acc.result(scale), "metric": pick_metric(cat)} for cat, acc in categories.items()
        },
        "overall": overall.result(scale),
    }


def round_scores(results: Mapping[str, Any], digits: int = 4) -> dict[str, Any]:
    """A copy of :func:`aggregate`'s output with every float rounded (the reference uses 4)."""

    def walk(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, digits)
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(results)


class XlingualTokenizer:
    """GPT-2 byte-level BPE tokens with the "Ġ" space marker stripped.

    This is SuperNI's cross-lingual ROUGE tokenizer (``GPTTokenizer`` in Tk-Instruct and
    natural-instructions). ``name_or_path`` is a hub id or a local tokenizer directory.
    """

    def __init__(self, name_or_path: str = "gpt2") -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(name_or_path)

    def tokenize(self, text: str) -> list[str]:
        return [token.lstrip("Ġ") for token in self._tokenizer.tokenize(text)]
