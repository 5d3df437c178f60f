"""The few statistics a report adds to :mod:`heedful.analysis`: a bootstrap CI of a mean, and a line fit with its band."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heedful.analysis.grouping import bootstrap_weights, stream_rng


def mean_ci(values: Sequence[float], *, n_bootstrap: int, seed: int, name: str = "") -> tuple[float, float, float]:
    """The mean and its 95% percentile-bootstrap CI over the values (instances); NaN for none."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    weights = bootstrap_weights(data.size, n_bootstrap, stream_rng(seed, "mean_ci", name))
    means = weights @ data / data.size
    return mean, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def line_fit(x: Sequence[float], y: Sequence[float], grid: np.ndarray) -> dict[str, object]:
    """Least squares y = a + b·x: slope, intercept, Pearson r, the slope's p-value, and the 95% CI band of the mean line on ``grid``."""
    from scipy import stats

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    fit = stats.linregress(xs, ys)
    n = xs.size
    fitted = fit.intercept + fit.slope * grid
    residual = ys - (fit.intercept + fit.slope * xs)
    s = np.sqrt(residual @ residual / (n - 2)) if n > 2 else float("nan")
    sxx = ((xs - xs.mean()) ** 2).sum()
    half = stats.t.ppf(0.975, n - 2) * s * np.sqrt(1 / n + (grid - xs.mean()) ** 2 / sxx) if n > 2 else np.nan * grid
    return {"slope": float(fit.slope), "intercept": float(fit.intercept), "r": float(fit.rvalue),
            "p": float(fit.pvalue), "n": int(n), "fitted": fitted, "low": fitted - half, "high": fitted + half}
