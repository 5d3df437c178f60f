"""Sun et al. (2023) option scoring on hand-made step distributions."""

from __future__ import annotations

import math

import pytest
import torch

from heedful.models.sun2023 import option_probabilities


def _steps(*rows: list[float]) -> torch.Tensor:
    return torch.log(torch.tensor(rows, dtype=torch.float64))


def test_product_over_the_shortest_options_length() -> None:
    # vocab of 4 tokens; step 0 and step 1 distributions of the greedy generation
    steps = _steps([0.5, 0.2, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25])
    probs = option_probabilities(steps, [[0, 1, 3], [2, 2], [1, 3, 3]], n_steps=3)
    # min option length is 2: only steps 0 and 1 count, even for the 3-token options
    assert probs == pytest.approx((0.5 * 0.6, 0.2 * 0.2, 0.2 * 0.1))


def test_steps_stop_at_the_rows_eos() -> None:
    steps = _steps([0.5, 0.2, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1])
    probs = option_probabilities(steps, [[0, 1], [3, 1]], n_steps=1)
    assert probs == pytest.approx((0.5, 0.1))


def test_long_options_do_not_underflow_before_the_product() -> None:
    steps = torch.full((40, 3), math.log(1 / 3), dtype=torch.float64)
    [p] = option_probabilities(steps, [[0] * 40], n_steps=40)
    assert p == pytest.approx(3.0**-40)
