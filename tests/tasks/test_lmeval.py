"""``lmeval:`` task specs: lm-evaluation-harness multiple-choice tasks, scored as lm-eval scores them.

Local lm-eval task YAMLs (``dataset_path: json``) over 20 real MMLU rows: lm-eval's own
``mmlu_abstract_algebra`` config re-pointed at the rows, and three edge cases of the
prompt/answer join (``target_delimiter: ""`` after a word with space-led choices; a prompt
ending in whitespace with a newline delimiter and string targets; an empty prompt). The
same tiny random Llama is scored by ``lm_eval.simple_evaluate`` and by heedful's
``designer`` instruction, and the two must agree document by document.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.evaluate.config import EvalConfig, ScoringConfig
from heedful.evaluate.runner import evaluate
from heedful.models.config import ModelConfig
from heedful.models.encoding import move_trailing_whitespace
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig
from heedful.tasks.lmeval import lmeval_task
from heedful.tasks.spec import load_tasks
from heedful.tasks.types import TaskType
from shared_data import SHARED_DATA

lm_eval = pytest.importorskip("lm_eval", reason="lm-evaluation-harness not installed")

MMLU_CSV = SHARED_DATA / "mmlu" / "test" / "abstract_algebra_test.csv"
SUITE = "heedful_lm_suite"
TASKS = ("heedful_lm_mmlu", "heedful_lm_glued", "heedful_lm_trailing", "heedful_lm_empty")
REFUSED = ("heedful_lm_gen", "heedful_lm_two_golds", "heedful_lm_word_delimiter", "heedful_lm_no_space")
MAX_LOGLIK_DIFF = 1e-4


def _task_yaml(name: str, body: str) -> str:
    return f"task: {name}\n{body}metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lm-eval task YAMLs and their JSONL documents (the first 20 MMLU abstract algebra rows)."""
    if not MMLU_CSV.is_file():
        pytest.skip(f"MMLU reference data not found at {MMLU_CSV}")
    folder = tmp_path_factory.mktemp("lmeval-tasks")
    with MMLU_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[:20]
    docs = folder / "docs.jsonl"
    with docs.open("w") as f:
        for question, *choices, letter in rows:
            gold = "ABCD".index(letter)
            doc = {
                "question": question,
                "choices": choices,
                "answer": gold,
                "answer_text": choices[gold],  # a feature: lm-eval returns it as is (a Jinja "4" would become index 4)
                "spaced": [" " + c for c in choices],
                "sentences": [f"The answer is {c}." for c in choices],
            }
            f.write(json.dumps(doc) + "\n")
    data = (
        "dataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(docs))}\ntest_split: test\n"
    )
    mc = "output_type: multiple_choice\n"
    # lm-eval's own MMLU subject config (description, doc_to_text, letters), re-pointed at the local rows.
    mmlu_yaml = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default" / "mmlu_abstract_algebra.yaml"
    (folder / "heedful_lm_mmlu.yaml").write_text(
        f"include: {json.dumps(str(mmlu_yaml))}\ntask: heedful_lm_mmlu\ntask_alias: heedful_lm_mmlu\ntag: []\n"
        f"fewshot_split: null\n{data}"
    )
    bodies = {
        # The prompt ends in a word and the delimiter is empty: the choices carry the space (as sycophancy's).
        "heedful_lm_glued": mc + 'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: spaced\n'
        'doc_to_target: answer\ntarget_delimiter: ""\n',
        # The prompt ends in whitespace and the delimiter is a newline; targets are choice strings.
        "heedful_lm_trailing": mc + 'doc_to_text: "{{question}}\\nAnswer: "\ndoc_to_choice: choices\n'
        'doc_to_target: answer_text\ntarget_delimiter: "\\n"\n',
        # No prompt at all (as paws_gl): lm-eval and heedful score each sentence after the prefix token.
        "heedful_lm_empty": mc + 'doc_to_text: ""\ndoc_to_choice: sentences\ndoc_to_target: answer\ntarget_delimiter: ""\n',
        "heedful_lm_gen": 'output_type: generate_until\ndoc_to_text: "{{question}}"\ndoc_to_target: answer_text\n',
        "heedful_lm_two_golds": mc + 'doc_to_text: "{{question}}"\ndoc_to_choice: choices\n'
        'doc_to_target: "{{[answer, 0]}}"\n',
        "heedful_lm_word_delimiter": mc + 'doc_to_text: "{{question}}"\ndoc_to_choice: choices\n'
        'doc_to_target: answer\ntarget_delimiter: " Answer: "\n',
        "heedful_lm_no_space": mc + 'doc_to_text: "{{question}}\\nAnswer:"\ndoc_to_choice: choices\n'
        'doc_to_target: answer\ntarget_delimiter: ""\n',
    }
    for name, body in bodies.items():
        (folder / f"{name}.yaml").write_text(_task_yaml(name, data + body))
    tasks = "".join(f"  - {name}\n" for name in TASKS)
    (folder / f"{SUITE}.yaml").write_text(f"group: {SUITE}\ntask:\n{tasks}metadata:\n  version: 1.0\n")
    return folder


@pytest.fixture(scope="module")
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def lm_eval_out(task_dir, tiny_llama_dir, offline):
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(tiny_llama_dir), dtype="float32", batch_size=4, device="cpu")
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=[SUITE],
        num_fewshot=0,
        task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True,
        bootstrap_iters=0,
    )


@pytest.fixture(scope="module")
def heedful_out(task_dir, tiny_llama_dir, offline, tmp_path_factory):
    config = EvalConfig(
        model=ModelConfig(name=str(tiny_llama_dir)),
        data=DataConfig(tasks=f"lmeval:{SUITE}@{task_dir}"),
        prompts=PromptConfig(instructions="designer"),
        scoring=ScoringConfig(batch_size=4),
        out=str(tmp_path_factory.mktemp("lmeval-eval")),
    )
    return evaluate(config, show_progress=False)


def test_designer_accuracy_and_logliks_equal_lm_evals(lm_eval_out, heedful_out):
    records = {(r.task, r.instance_id): r for r in heedful_out.records}
    assert {task for task, _ in records} == set(TASKS)
    diffs = []
    for task in TASKS:
        samples = lm_eval_out["samples"][task]
        assert len(samples) == 20
        for sample in samples:
            rec = records[(task, str(sample["doc_id"]))]
            assert rec.instruction_id == "designer"
            pairs = [tuple(a) for a in sample["arguments"]]
            assert len(pairs) == len(rec.options) == len(rec.logliks)
            for (context, continuation), option in zip(pairs, rec.options):
                # The same text, split where lm-eval's encoder splits it (trailing whitespace moved).
                assert rec.prompt + option == context + continuation
                assert move_trailing_whitespace(rec.prompt, option) == move_trailing_whitespace(context, continuation)
            lls = [float(resp[0][0]) for resp in sample["resps"]]
            diffs += [abs(a - b) for a, b in zip(rec.logliks, lls, strict=True)]
            assert rec.prediction_index == max(range(len(lls)), key=lambda i: (lls[i], -i))
            assert rec.score == sample["acc"]
        ours = heedful_out.summary["tasks"][task]["designer"]
        assert ours["n"] == 20
        assert ours["score"] == lm_eval_out["results"][task]["acc,none"]
    assert max(diffs) <= MAX_LOGLIK_DIFF
    # A random model is right on some documents and wrong on others: the comparison can fail.
    assert 0 < sum(r.score for r in heedful_out.records) < len(heedful_out.records)


def test_group_expands_to_its_tasks_with_lm_evals_documents(task_dir, offline):
    tasks = load_tasks(f"lmeval:{SUITE}@{task_dir}")
    assert [t.name for t in tasks] == list(TASKS)
    rows = [json.loads(line) for line in (task_dir / "docs.jsonl").read_text().splitlines()]
    by_name = {t.name: t for t in tasks}
    for task in tasks:
        assert task.source == "lmeval" and task.type is TaskType.MULTIPLE_CHOICE and task.metric == "accuracy"
        assert [i.id for i in task.instances] == [str(k) for k in range(20)]
        assert all(i.split == "test" and i.references == (i.options[i.gold],) for i in task.instances)
        assert [i.gold for i in task.instances] == [row["answer"] for row in rows]
    mmlu = by_name["heedful_lm_mmlu"]
    assert mmlu.metadata["description"] == "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
    assert mmlu.definition == mmlu.metadata["description"].strip()
    assert mmlu.instances[0].input.endswith("\nAnswer:") and mmlu.instances[0].options == ("A", "B", "C", "D")
    # The glued choices lose the space heedful's join puts back; the others are lm-eval's choices.
    assert [i.options for i in by_name["heedful_lm_glued"].instances] == [tuple(r["choices"]) for r in rows]
    assert by_name["heedful_lm_trailing"].metadata["target_delimiter"] == "\n"
    assert by_name["heedful_lm_empty"].instances[0].input == ""


def test_unknown_task_name_says_how_to_find_names(task_dir, offline):
    with pytest.raises(HeedfulError, match="unknown lm-eval task 'no_such_task_xyz'.*lm-eval ls tasks") as err:
        load_tasks(f"lmeval:{SUITE},no_such_task_xyz@{task_dir}")
    assert "\n" not in str(err.value)
    with pytest.raises(HeedfulError, match="no task name"):
        load_tasks("lmeval: , ")


def test_generate_until_task_is_refused(task_dir, offline):
    with pytest.raises(HeedfulError, match="'heedful_lm_gen' is generate_until: .*only output_type multiple_choice") as err:
        load_tasks(f"lmeval:heedful_lm_gen@{task_dir}")
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def refused_tasks(task_dir, offline):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(task_dir)).load(list(REFUSED))["tasks"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("heedful_lm_gen", "is generate_until"),
        ("heedful_lm_two_golds", r"document 0\): 2 gold answers"),
        ("heedful_lm_word_delimiter", "target_delimiter ' Answer: ' is not whitespace"),
        ("heedful_lm_no_space", r"document 0\): lm-eval scores choice .* with no space"),
    ],
)
def test_tasks_heedful_cannot_score_as_lm_eval_are_refused(refused_tasks, name, message):
    with pytest.raises(HeedfulError, match=message) as err:
        lmeval_task(name, refused_tasks[name])
    assert "\n" not in str(err.value)


def test_missing_lm_eval_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval.tasks", None)  # import fails as if not installed
    with pytest.raises(HeedfulError, match="pip install lm-eval"):
        load_tasks("lmeval:arc_easy")
