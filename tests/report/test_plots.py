"""Labels that fit: task names on the real BIG-bench Lite subtasks stay distinct and short."""

from __future__ import annotations

from heedful.report.plots import task_label, task_labels


def test_subtasks_drop_the_repeated_parent_and_stay_distinct():
    assert task_label("bbq_lite_json:bbq_lite_json_age_ambig") == "bbq_lite_json:age_ambig"
    names = ["bbq_lite_json:bbq_lite_json_sexual_orientation_ambig", "bbq_lite_json:bbq_lite_json_sexual_orientation_disambig",
             "conceptual_combinations:surprising_uncommon_combinations", "winowhy"]
    labels = task_labels(names)
    assert len(set(labels)) == 4 and all(len(label) <= 34 for label in labels)
    assert labels[0].endswith("_ambig") and labels[1].endswith("disambig")  # the end that tells them apart stays
