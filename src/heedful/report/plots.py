"""The report's chart types, drawn with matplotlib (Agg, no display) and saved as PNG.

Each series gets a colour from Okabe and Ito's colour-blind-safe palette *and* a hatch
(bars) or a marker and line style (lines), so that a figure printed in greyscale still
tells its series apart. Long category names are shortened to fit; the CSV beside each
figure keeps them whole.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, the same on every machine
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np

COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), "-")
BASELINE_STYLES = (("#555555", "--"), ("#999999", ":"), ("#000000", "-."))

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 10,
                     "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8,
                     "legend.frameon": False})


def short(label: str, width: int = 28) -> str:
    """A label cut to ``width`` characters (with an ellipsis)."""
    label = str(label)
    return label if len(label) <= width else label[: width - 1] + "…"


def task_label(name: str, width: int = 34) -> str:
    """A task name that fits: a subtask drops its parent's repeated prefix, and the middle goes, not the end
    (``bbq_lite_json:bbq_lite_json_age_ambig`` -> ``bbq_lite_json:age_ambig``)."""
    parent, sep, sub = str(name).partition(":")
    if sep and sub.startswith(parent):
        sub = sub[len(parent):].lstrip("_") or sub
    label = f"{parent}{sep}{sub}"
    if len(label) <= width:
        return label
    half = (width - 1) // 2
    return label[:half] + "…" + label[-(width - 1 - half):]


def task_labels(names: Sequence[str], width: int = 34) -> list[str]:
    """:func:`task_label` of each name, or the names whole where two would read the same."""
    labels = [task_label(n, width) for n in names]
    return labels if len(set(labels)) == len(labels) else [str(n) for n in names]


def wrap(label: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(str(label), width, break_long_words=True)[:3]) or str(label)


def _errors(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Matplotlib's asymmetric error bars from a CI (no bar where the CI is unknown)."""
    below = np.where(np.isnan(low), 0, values - low)
    above = np.where(np.isnan(high), 0, high - values)
    return np.clip(np.vstack([below, above]), 0, None)


def grouped_bars(
    path: Path, *, groups: Sequence[str], series: Sequence[str], values: dict[tuple[str, str], tuple[float, float, float]],
    ylabel: str, title: str, baselines: Sequence[tuple[str, float]] = (), percent: bool = True,
) -> None:
    """Bars per (group, series) with 95% CI whiskers; ``values[(group, series)] = (mean, low, high)``; baselines as lines."""
    scale = 100 if percent else 1
    width = 0.8 / max(1, len(series))
    # About 0.1 in per character of a 10 pt label: a group is as wide as its longest word, and labels wrap
    # to the group's width, so neighbours never touch.
    longest_word = max((len(word) for g in groups for word in str(g).split()), default=0)
    group_inches = max(0.35 + 0.22 * len(series), 0.1 * longest_word + 0.15)
    fig, ax = plt.subplots(figsize=(min(11.0, max(5.0, 0.9 + len(groups) * group_inches)), 3.6))
    x = np.arange(len(groups))
    for i, name in enumerate(series):
        cells = np.array([values.get((g, name), (np.nan,) * 3) for g in groups], dtype=float) * scale
        ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(cells[:, 0]), width,
               yerr=_errors(cells[:, 0], cells[:, 1], cells[:, 2]), capsize=2, color=COLOURS[i % len(COLOURS)],
               hatch=HATCHES[i % len(HATCHES)], edgecolor="black", linewidth=0.4, label=short(name, 24))
    for j, (name, value) in enumerate(baselines):
        colour, style = BASELINE_STYLES[j % len(BASELINE_STYLES)]
        ax.axhline(value * scale, color=colour, linestyle=style, linewidth=1.2, label=name)
    chars = max(8, int(group_inches / 0.1))
    ax.set_xticks(x, [wrap(g, chars) for g in groups], rotation=0 if len(groups) <= 6 else 30,
                  ha="center" if len(groups) <= 6 else "right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if percent:
        ax.set_ylim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def task_dots(
    path: Path, *, tasks: Sequence[str], series: Sequence[str], values: dict[tuple[str, str], tuple[float, float, float]],
    xlabel: str, title: str, baselines: Sequence[tuple[str, float]] = (),
) -> None:
    """One row per task (however many), a marker per series with its 95% CI as a line; baselines as vertical lines."""
    height = max(2.5, 0.9 + 0.24 * len(tasks))
    fig, ax = plt.subplots(figsize=(6.8, height))
    y = np.arange(len(tasks))[::-1]
    offsets = np.linspace(-0.25, 0.25, len(series)) if len(series) > 1 else [0.0]
    for i, name in enumerate(series):
        cells = np.array([values.get((t, name), (np.nan,) * 3) for t in tasks], dtype=float) * 100
        ax.errorbar(cells[:, 0], y + offsets[i], xerr=_errors(cells[:, 0], cells[:, 1], cells[:, 2]), fmt=MARKERS[i % len(MARKERS)],
                    color=COLOURS[i % len(COLOURS)], markersize=4, elinewidth=0.8, capsize=1.5, label=short(name, 24))
    for j, (name, value) in enumerate(baselines):
        colour, style = BASELINE_STYLES[j % len(BASELINE_STYLES)]
        ax.axvline(value * 100, color=colour, linestyle=style, linewidth=1.2, label=name)
    ax.set_yticks(y, task_labels(tasks))
    ax.set_xlim(-2, 102)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", linewidth=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0 + 0.4 / height), ncol=min(4, len(series) + len(baselines)))
    _save(fig, path)


def lines(
    path: Path, *, xs: Sequence[str], series: dict[str, dict[str, tuple[float, float, float]]], xlabel: str,
    ylabel: str, title: str, log_positions: Sequence[float] | None = None,
    baselines: Sequence[tuple[str, float]] = (), marks: dict[str, str] | None = None,
) -> None:
    """A line per series over the x values (categorical, or at ``log_positions`` on a log axis), 95% CI bands.

    ``marks[series] = x`` draws a star where that series first matches the first baseline.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    positions = np.asarray(log_positions if log_positions is not None else np.arange(len(xs)), dtype=float)
    for i, (name, points) in enumerate(series.items()):
        cells = np.array([points.get(x, (np.nan,) * 3) for x in xs], dtype=float) * 100
        keep = ~np.isnan(cells[:, 0])
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(positions[keep], cells[keep, 0], marker=MARKERS[i % len(MARKERS)], linestyle=LINES[i % len(LINES)],
                color=colour, label=short(name, 40), markersize=4)
        ax.fill_between(positions[keep], cells[keep, 1], cells[keep, 2], color=colour, alpha=0.12, linewidth=0)
        if marks and name in marks:
            at = list(xs).index(marks[name])
            ax.plot([positions[at]], [cells[at, 0]], marker="*", markersize=13, color=colour,
                    markeredgecolor="black", linestyle="none")
    for j, (name, value) in enumerate(baselines):
        colour, style = BASELINE_STYLES[j % len(BASELINE_STYLES)]
        ax.axhline(value * 100, color=colour, linestyle=style, linewidth=1.2, label=short(name, 40))
    if log_positions is not None:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(positions, [wrap(x, 14) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def scatter_fit(
    path: Path, *, points: Sequence[tuple[float, float, str]], fit: dict[str, Any], grid: np.ndarray, xlabel: str,
    ylabel: str, title: str,
) -> None:
    """Points (x, y, kind) with the least-squares line and its 95% CI band."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    kinds = sorted({k for _, _, k in points})
    for i, kind in enumerate(kinds):
        chosen = [(x, y) for x, y, k in points if k == kind]
        ax.scatter([x for x, _ in chosen], [100 * y for _, y in chosen], marker=MARKERS[i % len(MARKERS)],
                   color=COLOURS[i % len(COLOURS)], s=16, label=kind, edgecolor="black", linewidth=0.3)
    ax.plot(grid, 100 * fit["fitted"], color="black", linewidth=1.2,
            label=f"fit: slope {100 * fit['slope']:.3g} pts/unit, r = {fit['r']:.2f}, p = {fit['p']:.2g}")
    ax.fill_between(grid, 100 * fit["low"], 100 * fit["high"], color="black", alpha=0.12, linewidth=0,
                    label="95% CI of the line")
    ax.axhline(0, color="#999999", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def embedding(path: Path, *, coords: np.ndarray, kinds: Sequence[str], title: str) -> None:
    """A 2-D embedding (t-SNE), one marker and colour per kind."""
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for i, kind in enumerate(sorted(set(kinds))):
        chosen = np.asarray([k == kind for k in kinds])
        ax.scatter(coords[chosen, 0], coords[chosen, 1], marker=MARKERS[i % len(MARKERS)], s=10, alpha=0.75,
                   color=COLOURS[i % len(COLOURS)], label=f"{kind} ({int(chosen.sum())})", linewidth=0)
    ax.set_xlabel("t-SNE 1 (no unit)")
    ax.set_ylabel("t-SNE 2 (no unit)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
