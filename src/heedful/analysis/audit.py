"""Does a model read its instructions? The audit's three measures and its verdict, from records.

1. **Phrasing sensitivity**: over the designer instruction and its equivalent phrasings,
   the mean accuracy, the spread (best − worst phrasing), the worst case per instance
   (HELM: the mean over instances of the lowest score any phrasing gets) and the PDR (the
   phrasings' mean drop relative to the designer instruction).
2. **Format sensitivity**: the same statistics over layouts of one instruction (see
   :mod:`heedful.perturbations.formats`), plus the bandit search's best and worst format.
3. **Reliance on the instruction**: the designer instruction vs each alteration (none,
   nonsense, negated, simplified, delusive) on the same instances, with paired tests
   (:mod:`heedful.analysis.paired`), beside the chance and majority baselines.

Every interval is a 95% bootstrap over instances, stratified by task (each task's
instances are resampled on their own; tasks weigh the same): percentile intervals, except
for the best, the worst and the spread, whose resamples are biased (a resample can only
add spread), whose percentile intervals are shifted back by the bootstrap's estimate of
that bias. The verdict is
sentences generated from these numbers only, each naming the figure and test it rests on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from heedful.analysis.grouping import OVERALL, bootstrap_weights, group_records, stream_rng
from heedful.analysis.paired import observed_vs_unobserved
from heedful.evaluate.records import Record

PHRASING_KINDS: tuple[str, ...] = ("designer", "observed", "unobserved", "paraphrase")
"""Instruction kinds that are equivalent phrasings of the task's instruction."""
FORMAT_KIND = "format"
RELIANCE_KINDS: tuple[str, ...] = ("none", "nonsense", "negated", "simplified", "delusive")
RELIANCE_NAMES = {"none": "removing the instruction", "nonsense": "replacing it with nonsense",
                  "negated": "negating it", "simplified": "keeping only its output space (simplified)",
                  "delusive": "giving wrong-label examples (delusive)"}


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def text(self, scale: float = 100, digits: int = 1) -> str:
        return f"{scale * self.value:.{digits}f} (95% CI {scale * self.low:.{digits}f} to {scale * self.high:.{digits}f})"


@dataclass(frozen=True)
class Sensitivity:
    """Statistics over a set of equivalent prompts (phrasings or formats), fractions in [0, 1]."""

    n_prompts: int
    n_tasks: int
    n_instances: int
    mean: Interval
    best: Interval
    worst: Interval
    spread: Interval
    worst_case: Interval
    pdr: Interval | None
    null_spread: float
    """The spread expected if the prompts were interchangeable: the mean spread when each instance's scores
    are shuffled among its prompts. Best − worst is never negative and grows with the number of prompts."""
    excess_spread: Interval
    """The spread beyond ``null_spread`` (the observed spread's interval, shifted): what compares across
    sets with different numbers of prompts."""
    spread_p: float
    """Permutation p-value of the spread against the interchangeable-prompts null."""
    per_prompt: list[dict[str, Any]]
    """Each (task, prompt)'s accuracy on the instances compared, best first within each task."""


def sensitivity(records: Iterable[Record], kinds: Sequence[str], *, reference: str | None = "designer",
                n_bootstrap: int = 1000, seed: int = 0) -> Sensitivity | None:
    """The statistics over the prompts of ``kinds`` on the instances every one of them scored.

    Prompts are compared on the instances each task has under all of them (a paired
    design: the spread is not inflated by different samples). ``reference`` is the kind
    the PDR is relative to (its prompts' mean); None for no PDR. None when fewer than two
    prompts qualify.
    """
    chosen = [r for r in records if r.instruction_kind in kinds]
    if not chosen:
        return None
    per_task: list[tuple[str, list[str], np.ndarray]] = []  # task, its prompts, (common instances x prompts)
    for task, by_kind in sorted(group_records(chosen).items()):
        columns: dict[str, dict[str, float]] = {}
        for kind, data in by_kind.items():
            for j, phrasing in enumerate(data.phrasings):
                columns[f"{kind}:{phrasing}"] = {i: data.scores[k, j] for k, i in enumerate(data.instances)
                                                 if not np.isnan(data.scores[k, j])}
        prompts = sorted(columns)
        common = sorted(set.intersection(*(set(col) for col in columns.values())))
        if len(prompts) >= 2 and common:
            per_task.append((task, prompts, np.array([[columns[p][i] for p in prompts] for i in common])))
    if not per_task:
        return None
    stats, nulls, per_prompt = [], [], []
    for task, prompts, matrix in per_task:
        w = bootstrap_weights(len(matrix), n_bootstrap, stream_rng(seed, "sensitivity", task, *kinds))
        ref = [j for j, p in enumerate(prompts) if reference and p.startswith(f"{reference}:")]
        stats.append(_stats(matrix, np.concatenate([np.ones((1, len(matrix))), w]), ref))  # row 0: as observed
        nulls.append(_null_spreads(matrix, n_bootstrap, stream_rng(seed, "null", task, *kinds)))
        accuracy = matrix.mean(axis=0)
        per_prompt += [{"task": task, "prompt": prompts[j], "kind": prompts[j].split(":", 1)[0],
                        "accuracy": float(accuracy[j]), "n": len(matrix)} for j in np.argsort(-accuracy, kind="stable")]
    stacked = np.array(stats)  # (tasks, 1 + B, 6); tasks weigh the same
    with warnings.catch_warnings():  # a column all NaN (no task has the reference) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        table = np.nanmean(stacked, axis=0)  # a task without the reference adds no PDR, not a NaN
    null = np.mean(nulls, axis=0)  # (B,) spreads under the null, averaged over tasks like the observed one

    def interval(column: int, shift: float = 0.0) -> Interval:
        low, high = np.nanpercentile(table[1:, column], [2.5, 97.5])
        value = float(table[0, column])
        if column in ORDER_STATISTICS:
            # Resampling instances inflates a max (and deflates a min: a best − worst spread only grows), so
            # the percentile interval can miss the estimate; it is shifted back by the bootstrap's bias.
            bias = float(np.nanmean(table[1:, column])) - value
            low, high = low - bias, high - bias
            if column == SPREAD:
                low = max(0.0, low)
        return Interval(value - shift, float(low) - shift, float(high) - shift)

    has_reference = reference is not None and any(p.startswith(f"{reference}:") for _, ps, _ in per_task for p in ps)
    null_mean = float(null.mean())
    return Sensitivity(
        n_prompts=round(np.mean([len(p) for _, p, _ in per_task])), n_tasks=len(per_task),
        n_instances=sum(len(m) for _, _, m in per_task),
        mean=interval(0), best=interval(1), worst=interval(2), spread=interval(3), worst_case=interval(4),
        pdr=interval(5) if has_reference else None, null_spread=null_mean, excess_spread=interval(3, null_mean),
        spread_p=float((1 + np.sum(null >= table[0, 3] - 1e-12)) / (1 + len(null))),
        per_prompt=per_prompt,
    )


SPREAD = 3
ORDER_STATISTICS = (1, 2, SPREAD)  # best, worst, spread: columns of _stats


def _null_spreads(matrix: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Spreads with each instance's scores shuffled among the prompts (the prompts made interchangeable)."""
    shuffled = rng.permuted(np.broadcast_to(matrix, (n, *matrix.shape)), axis=2)
    acc = shuffled.mean(axis=1)  # (n, prompts)
    return acc.max(axis=1) - acc.min(axis=1)


def _stats(matrix: np.ndarray, weights: np.ndarray, ref_columns: list[int]) -> np.ndarray:
    """Per row of instance multiplicities: mean, best, worst, spread, worst case per instance, PDR."""
    total = weights.sum(axis=1, keepdims=True)
    acc = weights @ matrix / total  # (B, prompts)
    worst_case = weights @ matrix.min(axis=1) / total[:, 0]
    mean = acc.mean(axis=1)
    if ref_columns:
        ref = acc[:, ref_columns].mean(axis=1)
        others = np.delete(acc, ref_columns, axis=1).mean(axis=1) if acc.shape[1] > len(ref_columns) else ref
        with np.errstate(invalid="ignore", divide="ignore"):
            pdr = np.where(ref > 0, 1 - others / ref, np.nan)
    else:
        pdr = np.full(len(acc), np.nan)
    return np.stack([mean, acc.max(axis=1), acc.min(axis=1), acc.max(axis=1) - acc.min(axis=1), worst_case, pdr],
                    axis=1)


def reliance(records: Sequence[Record], *, reference: str = "designer", kinds: Sequence[str] = RELIANCE_KINDS,
             n_bootstrap: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """The reference instruction vs each alteration present, over all tasks: paired Δ, CI and p."""
    present = {r.instruction_kind for r in records}
    rows = []
    for kind in kinds:
        if kind not in present or reference not in present:
            continue
        overall = observed_vs_unobserved(records, a=reference, b=kind, n_bootstrap=n_bootstrap, seed=seed)[-1]
        if overall.task != OVERALL:
            continue  # no instance was scored under both
        rows.append({"kind": kind, "reference": reference, **{k: v for k, v in asdict(overall).items()
                                                              if k not in ("kind_a", "kind_b", "task")}})
    return rows


def verdict(phrasing: Sensitivity | None, fmt: Sensitivity | None, relied: Sequence[dict[str, Any]],
            baselines: dict[str, float | None], reference_accuracy: float | None) -> list[str]:
    """Plain sentences that follow from the numbers, each naming the figure and test behind it."""
    lines = []
    if reference_accuracy is not None and baselines.get("chance") is not None:
        gap = reference_accuracy - baselines["chance"]
        where = "above" if gap > 0 else "below"
        lines.append(f"With its designer instruction the model scores {100 * reference_accuracy:.1f}%, "
                     f"{abs(100 * gap):.1f} points {where} a random guess over the options "
                     f"({100 * baselines['chance']:.1f}%) [figure: reliance; baseline: expected accuracy of a "
                     "uniform guess].")
    if phrasing is not None:
        lines.append(f"Wording: across {phrasing.n_prompts} equivalent phrasings accuracy ranges "
                     f"{phrasing.spread.text()} points from best to worst, {100 * phrasing.null_spread:.1f} of them "
                     f"expected if the phrasings were interchangeable (permutation p = {phrasing.spread_p:.2g}); "
                     f"the worst case per instance is {phrasing.worst_case.text()}% [figure: phrasing sensitivity; "
                     "95% bootstrap CI over instances, permutation of scores among prompts within instances].")
    if fmt is not None:
        lines.append(f"Format: across {fmt.n_prompts} layouts of one instruction accuracy ranges {fmt.spread.text()} "
                     f"points, {100 * fmt.null_spread:.1f} of them expected if the layouts were interchangeable "
                     f"(permutation p = {fmt.spread_p:.2g}) [figure: format sensitivity; 95% bootstrap CI over "
                     "instances, permutation of scores among prompts within instances].")
    if phrasing is not None and fmt is not None:
        # spreads beyond what interchangeable prompts give: sets of different sizes compare fairly
        f_x, p_x = fmt.excess_spread, phrasing.excess_spread
        numbers = f"(beyond chance: format {f_x.text()}, wording {p_x.text()} points)"
        if f_x.low > p_x.high:
            lines.append(f"Format moves accuracy more than wording does {numbers}: the format spread's CI lies "
                         "above the wording spread's [figures: format and phrasing sensitivity].")
        elif p_x.low > f_x.high:
            lines.append(f"Wording moves accuracy more than format does {numbers}: the wording spread's CI lies "
                         "above the format spread's [figures: phrasing and format sensitivity].")
        else:
            lines.append(f"Format and wording move accuracy by amounts this sample cannot tell apart {numbers}: "
                         "their CIs overlap [figures: phrasing and format sensitivity].")
    for row in relied:
        # the change from the designer instruction to the alteration (+ 0.0 turns -0.0 into 0.0)
        delta, low, high, p = (100 * row["mean_difference"] + 0.0, 100 * row["ci_low"] + 0.0,
                               100 * row["ci_high"] + 0.0, row["p_permutation"])
        change = f"{RELIANCE_NAMES.get(row['kind'], row['kind'])} changes accuracy by {0.0 - delta:+.1f} points " \
                 f"(95% CI {0.0 - high:+.1f} to {0.0 - low:+.1f}, paired permutation p = {p:.2g})"
        if low > 0:
            reading = "the model uses what this part of the instruction says"
        elif high < 0:
            reading = "the model does better without what this part of the instruction says"
        else:
            reading = "no effect this sample can detect: on this evidence the model barely reads it"
        lines.append(f"{change[0].upper()}{change[1:]}: {reading} [figure: reliance; test: paired sign-flip "
                     "permutation over instances].")
    return lines
