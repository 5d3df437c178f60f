from __future__ import annotations

import numpy as np
import pytest

from heedful.analysis.representations import distance_summary, nearest_reference_distances
from heedful.errors import HeedfulError
from heedful.evaluate.representations import PromptLabel


def test_distance_is_to_the_nearest_reference_of_the_same_instance():
    labels = [
        PromptLabel("t", "obs1", "observed", "a"), PromptLabel("t", "obs2", "observed", "a"),
        PromptLabel("t", "new", "unobserved", "a"),
        PromptLabel("t", "obs1", "observed", "b"), PromptLabel("t", "obs2", "observed", "b"),
        PromptLabel("t", "new", "unobserved", "b"),
        PromptLabel("u", "new", "unobserved", "c"),  # task without a reference: no row
    ]
    vectors = np.array([[0, 0], [10, 0], [3, 4], [0, 0], [0, 10], [0, 9], [1, 1]], dtype=np.float32)
    [row] = nearest_reference_distances(vectors, labels)
    # instance a: min(|(3,4)|, |(-7,4)|) = 5; instance b: min(9, 1) = 1
    assert row == {"task": "t", "instruction_id": "new", "kind": "unobserved", "distance": pytest.approx(3.0), "n": 2}
    # with "unobserved" as the reference the observed ones are measured instead
    rows = nearest_reference_distances(vectors, labels, reference_kinds=["unobserved"])
    assert {r["instruction_id"]: r["distance"] for r in rows} == {
        "obs1": pytest.approx((5 + 9) / 2), "obs2": pytest.approx((np.hypot(7, 4) + 1) / 2)
    }
    with pytest.raises(HeedfulError, match="2 vectors but 7 labels"):
        nearest_reference_distances(vectors[:2], labels)


def test_summary_averages_instructions_then_tasks():
    rows = [
        {"task": "t", "instruction_id": "1", "kind": "unobserved", "distance": 2.0, "n": 3},
        {"task": "t", "instruction_id": "2", "kind": "unobserved", "distance": 4.0, "n": 3},
        {"task": "u", "instruction_id": "1", "kind": "unobserved", "distance": 9.0, "n": 3},
        {"task": "u", "instruction_id": "x", "kind": "nonsense", "distance": 20.0, "n": 3},
    ]
    summary = distance_summary(rows)
    assert summary["tasks"]["t"]["unobserved"] == {"distance": 3.0, "n_instructions": 2}
    assert summary["overall"]["unobserved"] == {"distance": 6.0, "median_distance": 6.0, "n_tasks": 2}
    assert summary["overall"]["nonsense"] == {"distance": 20.0, "median_distance": 20.0, "n_tasks": 1}
