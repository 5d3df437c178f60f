"""Thompson-sampling search for the best and worst arm (FormatSpread) on planted, deterministic outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from heedful.errors import HeedfulError
from heedful.evaluate.bandit import BanditResult, search_extremes


class Planted:
    """Deterministic Bernoulli outcomes per (arm, instance); records every call."""

    def __init__(self, accuracy: list[float], n_instances: int, seed: int = 0) -> None:
        draws = np.random.default_rng(seed).random((len(accuracy), n_instances))
        self.outcomes = draws < np.asarray(accuracy)[:, None]
        self.calls: list[tuple[int, int]] = []

    def __call__(self, arm: int, instance: int) -> float:
        self.calls.append((arm, instance))
        return float(self.outcomes[arm, instance])


def _run(
    accuracy: list[float], n_instances: int = 100, budget: int = 300, seed: int = 0
) -> tuple[BanditResult, Planted]:
    score = Planted(accuracy, n_instances, seed=seed)
    result = search_extremes(score, len(accuracy), n_instances, budget=budget, seed=seed)
    return result, score


def _check_accounting(result: BanditResult, score: Planted) -> None:
    assert len(score.calls) == result.calls <= result.budget
    assert len(set(score.calls)) == len(score.calls)  # no (arm, instance) scored twice
    assert sum(result.pulls) == result.calls
    assert all(0.0 <= p <= 1.0 for p in (result.p_best, result.p_worst))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_a_planted_worst_arm(seed):
    accuracy = [0.7] * 13
    accuracy[7] = 0.1
    result, score = _run(accuracy, seed=seed)
    assert result.worst == 7
    assert result.p_worst > 0.9
    assert result.budget == 300 and result.calls == 300
    _check_accounting(result, score)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_a_planted_best_arm(seed):
    # The best search runs first and the worst search then spends its half on weak-looking
    # arms, so a planted best arm needs a wider margin than a planted worst one for the same certainty.
    accuracy = [0.3] * 13
    accuracy[4] = 0.95
    result, score = _run(accuracy, seed=seed)
    assert result.best == 4
    assert result.p_best > 0.9
    assert result.worst != 4
    _check_accounting(result, score)


def test_halves_of_the_budget_go_to_each_search():
    # Planted extremes are obvious, so each search concentrates on its own arm.
    accuracy = [0.5] * 6
    accuracy[1], accuracy[3] = 1.0, 0.0
    result, score = _run(accuracy, n_instances=200, budget=101)
    assert result.calls == 101
    first, second = score.calls[:50], score.calls[50:]
    assert sum(arm == 1 for arm, _ in first) > 25 and not any(arm == 1 for arm, _ in second[-20:])
    assert sum(arm == 3 for arm, _ in second) > 25 and not any(arm == 3 for arm, _ in first[-20:])
    assert (result.best, result.worst) == (1, 3)


def test_exhausting_every_arm_stops_early():
    result, score = _run([0.2, 0.5, 0.8], n_instances=4, budget=100)
    assert result.calls == 12 and result.pulls == (4, 4, 4) and result.budget == 100
    assert sorted(score.calls) == [(a, i) for a in range(3) for i in range(4)]
    _check_accounting(result, score)


def test_an_exhausted_arm_is_not_pulled_again():
    # Arm 0 always succeeds: the best search would pull it forever, but it has only 5 instances.
    result, score = _run([1.0, 0.4, 0.4, 0.4], n_instances=5, budget=12)
    assert result.pulls[0] == 5 and result.calls == 12
    _check_accounting(result, score)


def test_fractional_scores_update_the_posterior():
    levels = [0.1, 0.3, 0.5, 0.7, 0.9]
    seen: list[tuple[int, int]] = []

    def score(arm: int, instance: int) -> float:
        seen.append((arm, instance))
        return levels[arm]

    result = search_extremes(score, 5, 50, budget=60, seed=3)
    for arm, k in enumerate(result.pulls):
        assert result.means[arm] == pytest.approx((1 + k * levels[arm]) / (2 + k))
    assert (result.best, result.worst) == (4, 0)
    assert len(seen) == len(set(seen)) == 60


def test_certainty_is_low_when_arms_are_indistinguishable():
    # Four identical exhausted arms: each is the best (and the worst) with probability 1/4.
    result = search_extremes(lambda arm, inst: 0.5, 4, 10, budget=100, seed=0)
    assert result.calls == 40 and result.means == (0.5,) * 4
    assert result.p_best == pytest.approx(0.25, abs=0.03)
    assert result.p_worst == pytest.approx(0.25, abs=0.03)


def test_certainty_matches_an_independent_estimate():
    accuracy = [0.55, 0.5, 0.45, 0.5]
    result, _ = _run(accuracy, n_instances=30, budget=40, seed=4)
    pulls = np.asarray(result.pulls)
    alpha = np.asarray(result.means) * (2 + pulls)  # mean = alpha / (alpha + beta), alpha + beta = 2 + pulls
    draws = np.random.default_rng(99).beta(alpha, 2 + pulls - alpha, size=(200_000, 4))
    assert result.p_best == pytest.approx(np.mean(draws.argmax(1) == result.best), abs=0.03)
    assert result.p_worst == pytest.approx(np.mean(draws.argmin(1) == result.worst), abs=0.03)
    assert 0.1 < result.p_worst < 0.95  # a close race: the check above is not trivially 0 or 1


def test_same_seed_same_result_other_seed_other_calls():
    accuracy = [0.6] * 8
    accuracy[2] = 0.2
    a, calls_a = _run(accuracy, seed=5)
    b, calls_b = _run(accuracy, seed=5)
    assert a == b and calls_a.calls == calls_b.calls
    c = search_extremes(Planted(accuracy, 100, seed=5), 8, 100, budget=300, seed=6)
    assert c != a


def test_bad_arguments_and_scores_are_rejected():
    score = Planted([0.5, 0.5], 10)
    with pytest.raises(HeedfulError, match="budget"):
        search_extremes(score, 2, 10, budget=1, seed=0)
    with pytest.raises(HeedfulError, match="2 arms"):
        search_extremes(score, 1, 10, budget=10, seed=0)
    with pytest.raises(HeedfulError, match=r"not in \[0, 1\]"):
        search_extremes(lambda arm, inst: 1.5, 2, 10, budget=10, seed=0)
    with pytest.raises(HeedfulError, match=r"not in \[0, 1\]"):
        search_extremes(lambda arm, inst: float("nan"), 2, 10, budget=10, seed=0)
