"""Find the best and the worst arm (prompt format) under a call budget by Thompson sampling.

FormatSpread (Sclar et al. 2024, msclar/formatspread) reports the spread of accuracy
over prompt formats without scoring every format on every instance: a Bayesian bandit
with a Beta(1, 1) prior over each format's accuracy spends half the budget looking for
the best format (Thompson sampling, argmax of posterior draws) and half looking for the
worst (argmin). Scores may be fractional; a score ``s`` counts as ``s`` successes and
``1 - s`` failures.

Both searches share one posterior and one per-arm walk through the instances (a seeded
shuffle), so an observation made while looking for the best arm also informs the search
for the worst, and no (arm, instance) pair is ever scored twice. ``p_best``/``p_worst``
say how sure the search is: the posterior probability (Monte Carlo) that the chosen arm
really is the best / the worst.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from heedful.errors import HeedfulError

MC_DRAWS = 4000


@dataclass(frozen=True)
class BanditResult:
    """``best``/``worst``: arm indices with the highest / lowest posterior mean accuracy."""

    best: int
    worst: int
    calls: int  # distinct score() calls made
    budget: int
    means: tuple[float, ...]  # posterior mean accuracy per arm
    pulls: tuple[int, ...]  # instances scored per arm
    p_best: float  # posterior probability that ``best`` is the best arm
    p_worst: float  # posterior probability that ``worst`` is the worst arm


def search_extremes(
    score: Callable[[int, int], float],
    n_arms: int,
    n_instances: int,
    *,
    budget: int,
    seed: int,
) -> BanditResult:
    """Thompson-sample the best arm with ``budget // 2`` calls and the worst with the rest.

    ``score(arm, instance)`` is one model call returning a score in [0, 1]. Each arm is
    evaluated on its instances in its own seeded order; an arm whose instances are all
    scored is not pulled again, and the search stops early once every arm is. The same
    ``seed`` (and scores) gives the same result.
    """
    if n_arms < 2:
        raise HeedfulError(f"bandit search needs at least 2 arms, not {n_arms}")
    if budget < 2:
        raise HeedfulError(f"bandit search needs a budget of at least 2 calls (one per search), not {budget}")
    if n_instances < 1:
        raise HeedfulError(f"bandit search needs at least 1 instance, not {n_instances}")
    # Independent streams: the instance orders and the Monte Carlo draws do not depend on
    # how many Thompson draws the search made.
    order_ss, thompson_ss, mc_ss = np.random.SeedSequence(seed).spawn(3)
    order_rng = np.random.default_rng(order_ss)
    orders = [order_rng.permutation(n_instances) for _ in range(n_arms)]
    rng = np.random.default_rng(thompson_ss)
    alpha = np.ones(n_arms)
    beta = np.ones(n_arms)
    pulls = np.zeros(n_arms, dtype=int)
    seen: set[tuple[int, int]] = set()

    def pull(arm: int) -> None:
        instance = int(orders[arm][pulls[arm]])
        if (arm, instance) in seen:  # the per-arm walk makes this impossible; guard the invariant
            raise RuntimeError(f"bandit search would score arm {arm} on instance {instance} twice")
        seen.add((arm, instance))
        s = float(score(arm, instance))
        if not (math.isfinite(s) and 0.0 <= s <= 1.0):
            raise HeedfulError(f"bandit search: score({arm}, {instance}) = {s!r} is not in [0, 1]")
        alpha[arm] += s
        beta[arm] += 1.0 - s
        pulls[arm] += 1

    for find_best, calls in ((True, budget // 2), (False, budget - budget // 2)):
        for _ in range(calls):
            open_ = pulls < n_instances
            if not open_.any():
                break
            draws = rng.beta(alpha, beta)
            if find_best:
                pull(int(np.argmax(np.where(open_, draws, -np.inf))))
            else:
                pull(int(np.argmin(np.where(open_, draws, np.inf))))

    means = alpha / (alpha + beta)
    best, worst = int(np.argmax(means)), int(np.argmin(means))
    samples = np.random.default_rng(mc_ss).beta(alpha, beta, size=(MC_DRAWS, n_arms))
    return BanditResult(
        best=best,
        worst=worst,
        calls=len(seen),
        budget=budget,
        means=tuple(float(m) for m in means),
        pulls=tuple(int(p) for p in pulls),
        p_best=float(np.mean(np.argmax(samples, axis=1) == best)),
        p_worst=float(np.mean(np.argmin(samples, axis=1) == worst)),
    )
