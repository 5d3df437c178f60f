"""Model-free baselines for classification tasks scored with exact match (Kung & Peng 2023).

Kung & Peng compare instruction-tuned models with a *random baseline* that guesses a
label of the task's label space: on SuperNI's classification tasks it matches models
trained with instructions in low-resource settings. Scores here are in percent (0..100)
like :func:`heedful.evaluate.metrics.score_generation`: an instance scores 100 when the
guess matches any of its references under SuperNI's ``normalize_answer``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from heedful.errors import HeedfulError
from heedful.evaluate.metrics import normalize_answer


@dataclass(frozen=True)
class SampledGuess:
    """Exact match of ``n_runs`` seeded uniform-guess runs.

    ``mean`` is the mean over runs, ``ci_low``/``ci_high`` its 95% Student-t interval;
    ``run_low``/``run_high`` are the 2.5th and 97.5th percentiles of single runs (the
    range a model's score must leave to beat chance on this test set).
    """

    mean: float
    ci_low: float
    ci_high: float
    run_low: float
    run_high: float
    n_runs: int
    seed: int


def _labels(label_space: Sequence[str]) -> tuple[str, ...]:
    # A label listed twice is still one label: guessing is uniform over distinct labels.
    labels = tuple(dict.fromkeys(label_space))
    if not labels:
        raise HeedfulError("the label space is empty: a guessing baseline needs at least one label")
    return labels


def _normalized_refs(references_per_instance: Sequence[Sequence[str]]) -> list[set[str]]:
    if len(references_per_instance) == 0:
        raise HeedfulError("no instances to score a baseline on")
    out = []
    for index, refs in enumerate(references_per_instance):
        if isinstance(refs, str):
            raise HeedfulError(f"instance {index}: references must be a list of strings, not one string")
        if len(refs) == 0:
            raise HeedfulError(f"instance {index}: no reference output")
        out.append({normalize_answer(r) for r in refs})
    return out


def uniform_guess_expected(references_per_instance: Sequence[Sequence[str]], label_space: Sequence[str]) -> float:
    """Expected exact match (percent) of guessing a label uniformly at random per instance.

    Exact, not sampled: an instance contributes the fraction of labels that match one of
    its references, and the result is the mean of these fractions times 100.
    """
    labels = [normalize_answer(label) for label in _labels(label_space)]
    refs = _normalized_refs(references_per_instance)
    hits = sum(sum(label in r for label in labels) for r in refs)
    return 100.0 * hits / (len(labels) * len(refs))


def sampled_guess(
    references_per_instance: Sequence[Sequence[str]],
    label_space: Sequence[str],
    *,
    seed: int,
    n_runs: int = 100,
) -> SampledGuess:
    """Run the uniform-guess baseline ``n_runs`` times with ``seed``; see :class:`SampledGuess`."""
    if n_runs < 1:
        raise HeedfulError(f"n_runs must be at least 1, got {n_runs}")
    labels = _labels(label_space)
    normalized = [normalize_answer(label) for label in labels]
    refs = _normalized_refs(references_per_instance)
    rng = random.Random(seed)
    runs = []
    for _ in range(n_runs):
        correct = sum(normalized[rng.randrange(len(labels))] in r for r in refs)
        runs.append(100.0 * correct / len(refs))
    mean = sum(runs) / n_runs
    if n_runs > 1:
        from scipy.stats import t

        sd = math.sqrt(sum((x - mean) ** 2 for x in runs) / (n_runs - 1))
        half = float(t.ppf(0.975, n_runs - 1)) * sd / math.sqrt(n_runs)
    else:
        half = float("nan")
    ordered = sorted(runs)
    return SampledGuess(
        mean=mean,
        ci_low=mean - half,
        ci_high=mean + half,
        run_low=_percentile(ordered, 2.5),
        run_high=_percentile(ordered, 97.5),
        n_runs=n_runs,
        seed=seed,
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of sorted values (numpy's default method)."""
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def majority_label(train_labels: Sequence[str], label_space: Sequence[str]) -> str:
    """The label of ``label_space`` that the training outputs use most (ties: label-space order).

    Training outputs match labels under ``normalize_answer``; outputs outside the label
    space are ignored. No training output in the label space is an error.
    """
    labels = _labels(label_space)
    counts = Counter(normalize_answer(x) for x in train_labels)
    best = max(labels, key=lambda label: (counts[normalize_answer(label)], -labels.index(label)))
    if counts[normalize_answer(best)] == 0:
        raise HeedfulError("no training output is a label of the label space: no majority label")
    return best


def majority_baseline(
    references_per_instance: Sequence[Sequence[str]],
    label_space: Sequence[str],
    train_labels: Sequence[str],
) -> float:
    """Exact match (percent) of always answering :func:`majority_label`."""
    guess = normalize_answer(majority_label(train_labels, label_space))
    refs = _normalized_refs(references_per_instance)
    return 100.0 * sum(guess in r for r in refs) / len(refs)
