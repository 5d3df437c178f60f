"""Each report builder on planted records: which figures it makes, and the numbers it puts in them."""

from __future__ import annotations

import re

import pytest

from heedful.report import sections
from heedful.report.sections import Settings
from report_units import baselines, drop_evaluation, eval_unit, representations_unit, train_unit

SETTINGS = Settings(n_bootstrap=50, seed=0)


def _figures(found: list[sections.Section]) -> dict[str, sections.Figure]:
    """Figures by name without the ids' short hashes (``kinds-phrasings-1a2b3c`` -> ``kinds-phrasings``)."""
    return {re.sub(r"-[0-9a-f]{6}(?=-|$)", "", f.name): f for s in found for f in s.figures}


def test_kinds_groups_by_task_type_and_draws_every_task():
    unit = eval_unit("phrasings", {"designer": 0.3, "unobserved": 0.6}, tasks=("qa1", "bc1"),
                     task_types={"qa1": "QA", "bc1": "BC"})
    figures = _figures(sections.kinds([unit], SETTINGS))
    overall = figures["kinds-phrasings"].rows
    assert {(r["tasks"], r["kind"]) for r in overall} == {
        (g, k) for g in ("overall QA", "overall BC", "overall") for k in ("designer", "unobserved")}
    assert next(r for r in overall if r["tasks"] == "overall" and r["kind"] == "unobserved")["mean_%"] == 60.0
    assert {r["tasks"] for r in figures["tasks-phrasings"].rows} == {"qa1", "bc1"}


def test_kinds_skips_one_kind_and_evaluations_with_baselines():
    one = eval_unit("one", {"designer": 0.5})
    kung = eval_unit("kung", {"designer": 0.5, "none": 0.1})
    kung.baselines = baselines(0.5, 0.6)
    assert sections.kinds([one, kung], SETTINGS) == []


def test_axes_draws_a_line_over_the_one_axis_that_varies():
    units = [eval_unit(f"p[shots={s}]", {"designer": 0.2 + 0.3 * s, "unobserved": 0.4}, axes={"model": "m", "shots": s})
             for s in (0, 1)]
    figure = _figures(sections.axes(units, SETTINGS))["axis-p-shots"]
    assert {(r["shots"], r["kind"], r["mean_%"]) for r in figure.rows} == {
        ("0", "designer", 20.0), ("1", "designer", 50.0), ("0", "unobserved", 40.0), ("1", "unobserved", 40.0)}
    # two axes varying together: no single-axis figure
    mixed = [eval_unit(f"p[{i}]", {"designer": 0.5}, axes={"model": f"m{i}", "shots": i}) for i in (0, 1)]
    assert sections.axes(mixed, SETTINGS) == []


def test_alignment_labels_arms_from_their_train_units_and_compares_like_with_like(tmp_path):
    trained = [train_unit("align[method=full,kl=0.5]", str(tmp_path / "ft-kl"), method="full", kl=0.5),
               train_unit("align[method=prefix,kl=0]", str(tmp_path / "pt"), method="prefix")]
    before = eval_unit("before", {"observed": 0.6, "unobserved": 0.3})
    after = [eval_unit(f"after[{t.id}]", {"observed": 0.7, "unobserved": 0.6}, model=t.folder) for t in trained]
    figure = _figures(sections.alignment([*trained, before, *after], SETTINGS))["alignment-before"]
    assert {r["arm"] for r in figure.rows} == {"before", "FT+KL (λ=0.5)", "PT"}
    gap = {r["arm"]: r["mean_%"] for r in figure.rows if r["kind"] == "unobserved"}
    assert gap == {"before": 30.0, "FT+KL (λ=0.5)": 60.0, "PT": 60.0}


def test_distance_vs_drop_fits_the_planted_slope_and_tsne_places_every_vector():
    figures = _figures(sections.representations([representations_unit("reps"), drop_evaluation()], SETTINGS))
    fit = next(r for r in figures["distance-drop-reps"].rows if r["task"] == "fit")
    assert fit["slope_pts_per_unit"] == pytest.approx(20.0)  # 0.2 accuracy per unit of distance, in points
    assert fit["r"] == pytest.approx(1.0)
    tsne = figures["tsne-reps"].rows
    assert len(tsne) == 50 and {r["kind"] for r in tsne} == {"observed", "unobserved"}


def test_efficiency_finds_the_budget_each_curve_needs_to_match_the_plain_models_largest_budget():
    units = [
        train_unit("tuned-8", "a", model="instruct", budget="8", rouge=0.5),
        train_unit("tuned-32", "b", model="instruct", budget="32", rouge=0.7),
        train_unit("plain-8", "c", model="plain", budget="8", rouge=0.2),
        train_unit("plain-32", "d", model="plain", budget="32", rouge=0.45),
        train_unit("pre-8", "e", model="plain", budget="8", rouge=0.3, init_from="pre"),
        train_unit("pre-32", "f", model="plain", budget="32", rouge=0.4, init_from="pre"),
    ]
    figures = _figures(sections.efficiency(units, SETTINGS))
    match = {r["model"]: r["budget_to_match"] for r in figures["efficiency-match"].rows}
    assert match == {"instruct": "8", "plain": "32", "plain + instruction pre-finetuning": "not within the budgets"}
    assert figures["efficiency-match"].draw is None  # a table
    assert {r["category"] for r in figures["categories-mtl-superni-gupta"].rows} == {"Cat A", "Cat B"}
    assert {r["rouge_l_%"] for r in figures["efficiency-mtl-superni-gupta"].rows} == {50.0, 70.0, 20.0, 45.0, 30.0, 40.0}


def test_alterations_put_models_beside_the_random_and_majority_baselines(tmp_path):
    train = train_unit("train[alteration=simplified]", str(tmp_path / "t"))
    train.config["prompts"]["alteration"] = "simplified"
    untuned = eval_unit("untuned", {"designer": 0.4, "simplified": 0.4, "delusive": 0.3, "none": 0.1}, command="eval")
    tuned = eval_unit("tuned", {"designer": 0.6, "simplified": 0.6, "delusive": 0.5, "none": 0.2}, command="eval",
                      model="m")
    tuned.config["model"]["adapter"] = str(tmp_path / "t" / "final")
    for unit in (untuned, tuned):
        unit.baselines = baselines(0.5, 0.55)
    figure = _figures(sections.alterations([train, untuned, tuned], SETTINGS))["alterations-generation"]
    scores = {(r["model"], r["alteration"]): r["mean_%"] for r in figure.rows}
    assert scores[("untuned", "original")] == 40.0
    assert scores[("FT: simplified", "none")] == 20.0
    assert scores[("random guess (expected)", "")] == 50.0 and scores[("majority label", "")] == 55.0


def test_scores_table_has_one_row_per_unit_task_and_instruction():
    unit = eval_unit("u", {"designer": 0.3, "unobserved": 0.7})
    rows = _figures(sections.scores([unit], SETTINGS))["scores"].rows
    assert len(rows) == 4
    row = next(r for r in rows if r["task"] == "t1" and r["kind"] == "unobserved")
    assert row["score_%"] == 70.0 and row["n"] == 10 and row["ci_low_%"] < 70.0 < row["ci_high_%"]
