"""SuperNI metrics checked against rouge_score and a transcription of Tk-Instruct's code."""

from __future__ import annotations

import csv
import json
import random
import re
import string
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from heedful.evaluate import metrics as M
from shared_data import SHARED_DATA

DATA = SHARED_DATA
SUPERNI = DATA / "superni"

needs_superni = pytest.mark.skipif(
    not (SUPERNI / "tasks").is_dir(), reason=f"SuperNI test tasks not found at {SUPERNI / 'tasks'}"
)


# --- Literal transcription of yizhongw/Tk-Instruct src/compute_metrics.py (the same code is in
# allenai/natural-instructions eval/automatic/evaluation.py): the reference for these tests.
def ref_normalize_answer(s):
    """Lower text and remove punctuation, and extra whitespace."""

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_punc(lower(s)))


def ref_exact_match_score(prediction, ground_truth):
    return ref_normalize_answer(prediction) == ref_normalize_answer(ground_truth)


def ref_rougeL_score(prediction, ground_truth):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = scorer.score(prediction=prediction, target=ground_truth)
    return scores["rougeL"].fmeasure


def ref_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def ref_compute_metrics(predictions, references):
    exact_match, rougeL = 0, 0
    for pred, gold in zip(predictions, references):
        assert isinstance(gold, list)
        exact_match += ref_metric_max_over_ground_truths(ref_exact_match_score, pred, gold)
        rougeL += ref_metric_max_over_ground_truths(ref_rougeL_score, pred, gold)
    exact_match = 100.0 * exact_match / len(references)
    rougeL = 100.0 * rougeL / len(references)
    metrics = {"exact_match": exact_match, "rougeL": rougeL}
    metrics = {k: round(v, 4) for k, v in metrics.items()}
    return metrics


def ref_compute_grouped_metrics(predictions, references, groups):
    examples_by_group = {}
    for pred, gold, group in zip(predictions, references, groups):
        if group not in examples_by_group:
            examples_by_group[group] = []
        examples_by_group[group].append((pred, gold))
    results = {}
    for group, group_examples in examples_by_group.items():
        task_predictions, task_references = zip(*group_examples)
        group_metrics = ref_compute_metrics(task_predictions, task_references)
        for metric, value in group_metrics.items():
            results[f"{metric}_for_{group}"] = value
    return results


# SQuAD v1.1's normaliser, which also removes articles: SuperNI deliberately does not.
def squad_normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


# --- Pairs built from the real SuperNI test tasks.
SPECIAL_STRINGS = [
    "",
    " ",
    "\n\t",
    ".",
    "...",
    "?!",
    "--- ;; ::",
    "“”’",
    "¿Qué?",
    "机器学习是人工智能的一个分支。",
    "机器学习",
    "التعلم الآلي هو فرع من الذكاء الاصطناعي",
    "التعلم الآلي",
    "Машинное обучение — это раздел искусственного интеллекта.",
    "машинное обучение",
    "🙂🚀",
    "yes 🙂",
    "Yes",
    "café crème brûlée",
    "Straße",
    "İstanbul",
    "ＡＢＣ １２３",
    "the the the",
    "A",
]


def _task_files() -> list[Path]:
    return sorted((SUPERNI / "tasks").glob("*.json"))


@lru_cache(maxsize=None)
def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    kind = rng.randrange(5)
    if kind == 0:  # truncated
        return " ".join(words[: max(0, len(words) // 2)])
    if kind == 1:  # case and punctuation noise
        return text.upper() + rng.choice([".", "!", " ?", ",,", ""])
    if kind == 2:  # shuffled words
        rng.shuffle(words)
        return " ".join(words)
    if kind == 3:  # articles and spacing changed
        return "  the " + "   ".join(words) + " a "
    return "".join(ch for ch in text if ch not in string.punctuation)


@lru_cache(maxsize=1)
def superni_pairs() -> list[tuple[str, str]]:
    """(prediction, reference) pairs: neighbours, demonstrations, perturbations, specials."""
    rng = random.Random(0)
    pairs: list[tuple[str, str]] = []
    for path in _task_files():
        task = _load(path)
        # Clipped to 60 space-separated pieces: ROUGE-L's LCS is quadratic in pure Python and
        # a few tasks have passage-long outputs.
        outputs = [" ".join(inst["output"][0].split(" ")[:60]) for inst in task["Instances"][:8]]
        for i, out in enumerate(outputs):
            pairs.append((outputs[(i + 1) % len(outputs)], out))  # neighbour, same task
            pairs.append((_perturb(out, rng), out))
        for demo in task.get("Positive Examples") or []:
            pairs.append((demo["output"], outputs[0]))
        pairs.append((rng.choice(SPECIAL_STRINGS), outputs[1]))
        pairs.append((outputs[2], rng.choice(SPECIAL_STRINGS)))
    pairs += [(a, b) for a in SPECIAL_STRINGS for b in SPECIAL_STRINGS]
    return pairs


@needs_superni
def test_pairs_are_many_and_discriminating():
    pairs = superni_pairs()
    assert len(pairs) >= 1000
    em = Counter(ref_exact_match_score(p, r) for p, r in pairs)
    assert em[True] >= 50 and em[False] >= 500
    rouge = [ref_rougeL_score(p, r) for p, r in pairs[:400]]
    assert any(0.0 < x < 1.0 for x in rouge) and 0.0 in rouge and 1.0 in rouge
    # Some pairs match only if articles were removed: EM below must keep them apart.
    assert any(
        squad_normalize_answer(p) == squad_normalize_answer(r) and not ref_exact_match_score(p, r)
        for p, r in pairs
    )
    assert any(any(ord(ch) > 127 for ch in p + r) for p, r in pairs)


@needs_superni
def test_rouge_l_equals_rouge_score_exactly():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for prediction, reference in superni_pairs():
        expected = scorer.score(target=reference, prediction=prediction)["rougeL"].fmeasure
        assert M.rouge_l(prediction, reference) == expected, (prediction, reference)


@needs_superni
def test_exact_match_and_normalize_equal_tk_instruct():
    for prediction, reference in superni_pairs():
        assert M.normalize_answer(prediction) == ref_normalize_answer(prediction)
        assert M.exact_match(prediction, reference) == float(
            ref_exact_match_score(prediction, reference)
        )


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("Yes", "yes", 1.0),
        ("YES.", "yes", 1.0),
        ("  yes \n", "yes", 1.0),
        ("New   York", "new york", 1.0),
        ("don't", "dont", 1.0),
        ("(A)", "A", 1.0),
        ("the cat", "cat", 0.0),  # articles are kept, unlike SQuAD
        ("a cat", "the cat", 0.0),
        ("yes", "no", 0.0),
        ("", "", 1.0),
        ("...", "", 1.0),
        ("café", "cafe", 0.0),  # only ASCII punctuation goes; accents stay
        ("“yes”", "yes", 0.0),  # curly quotes are not in string.punctuation
        ("ПРИВЕТ", "привет", 1.0),
    ],
)
def test_exact_match_cases(prediction, reference, expected):
    assert M.exact_match(prediction, reference) == expected
    assert float(ref_exact_match_score(prediction, reference)) == expected


def test_normalize_answer_cases():
    assert M.normalize_answer("  The Cat,  sat!\tOn a mat. ") == "the cat sat on a mat"
    assert M.normalize_answer("") == ""


@pytest.mark.parametrize(
    "text", ["机器学习", "التعلم الآلي", "машинное обучение", "🙂🚀", "", "?!"]
)
def test_default_rouge_ignores_non_ascii_like_the_reference(text):
    # rouge_score's default tokenizer keeps [a-z0-9] only: identical non-Latin text scores 0.
    assert M.rouge_l(text, text) == 0.0 == ref_rougeL_score(text, text)


def test_rouge_l_stems_and_is_an_f_measure():
    assert M.rouge_l("running dogs", "dogs run") == ref_rougeL_score("running dogs", "dogs run")
    assert M.rouge_l("the dogs ran", "the dogs ran") == 1.0
    assert 0.0 < M.rouge_l("a cat sat on the mat", "the cat") < 1.0


def test_max_over_references_takes_the_best_reference():
    refs = ["completely different words", "a cat sat on the mat", "Cat."]
    assert M.max_over_references(M.exact_match, "cat", refs) == 1.0
    assert M.max_over_references(M.rouge_l, "the cat sat", refs) == max(
        ref_rougeL_score("the cat sat", r) for r in refs
    )
    with pytest.raises(ValueError):
        M.max_over_references(M.exact_match, "cat", [])


def test_score_generation_is_a_fraction():
    refs = ["dogs run", "Running dogs!"]
    scores = M.score_generation("running dogs", refs)
    assert scores == {
        "exact_match": 1.0,
        "rougeL": ref_metric_max_over_ground_truths(ref_rougeL_score, "running dogs", refs),
    }
    assert 0.0 < M.score_generation("running dogs", ["dogs run"])["rougeL"] < 1.0
    assert M.score_generation("cats", ["dogs"]) == {"exact_match": 0.0, "rougeL": 0.0}


def test_accuracy():
    assert M.accuracy([True, False, True, True]) == 0.75
    assert M.accuracy([1, 0]) == 0.5
    with pytest.raises(ValueError):
        M.accuracy([])
    with pytest.raises(ValueError):
        M.accuracy([2, 0])


# --- Aggregation on real tasks, against the transcribed compute_metrics/compute_grouped_metrics.
@lru_cache(maxsize=1)
def _manifest_categories() -> dict[str, str]:
    with (SUPERNI / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return {row["name"]: row["category"] for row in csv.DictReader(handle, delimiter="\t")}


def superni_records() -> list[dict]:
    """Records from two tasks of each of three categories, with unequal instance counts."""
    by_category: dict[str, list[str]] = {}
    for name, category in sorted(_manifest_categories().items()):
        by_category.setdefault(category, []).append(name)
    chosen = ["Textual Entailment", "Title Generation", "Coreference Resolution"]
    records = []
    for c, category in enumerate(chosen):
        for t, name in enumerate(by_category[category][:2]):
            task = _load(SUPERNI / "tasks" / f"{name}.json")
            instances = task["Instances"][: 3 + 4 * t + c]
            for i, inst in enumerate(instances):
                neighbour = instances[(i + 1) % len(instances)]["output"][0]
                # Every third prediction is the gold answer upper-cased, so EM is not all 0.
                prediction = inst["output"][0].upper() if i % 3 == 0 else neighbour
                records.append(
                    {
                        "task": name,
                        "id": inst["id"],
                        "prediction": prediction,
                        "references": [neighbour[:5], *inst["output"]],
                        "category": category,
                    }
                )
    return records


@needs_superni
def test_aggregate_matches_tk_instruct_grouping():
    records = superni_records()
    result = M.aggregate(records, percent=True)
    preds = [r["prediction"] for r in records]
    refs = [r["references"] for r in records]

    overall = ref_compute_metrics(preds, refs)
    assert {k: round(result["overall"][k], 4) for k in M.METRICS} == overall
    assert result["overall"]["n"] == len(records)

    by_task = ref_compute_grouped_metrics(preds, refs, [r["task"] for r in records])
    counts = Counter(r["task"] for r in records)
    assert set(result["tasks"]) == set(counts)
    for task, scores in result["tasks"].items():
        assert scores["n"] == counts[task]
        for metric in M.METRICS:
            assert round(scores[metric], 4) == by_task[f"{metric}_for_{task}"]

    # The reference keys categories as "_".join(name.lower().split()); grouping is the same.
    keys = ["_".join(r["category"].lower().split()) for r in records]
    by_category = ref_compute_grouped_metrics(preds, refs, keys)
    assert len(result["categories"]) == 3
    for category, scores in result["categories"].items():
        key = "_".join(category.lower().split())
        assert scores["n"] == keys.count(key)
        for metric in M.METRICS:
            assert round(scores[metric], 4) == by_category[f"{metric}_for_{key}"]
        # A category is a mean over instances, not over tasks: with unequal task sizes the
        # two differ, so this test tells them apart.
        task_means = [
            result["tasks"][t]["rougeL"]
            for t in {r["task"] for r in records if r["category"] == category}
        ]
        assert scores["rougeL"] != pytest.approx(sum(task_means) / len(task_means), abs=1e-9)

    assert result["categories"]["Textual Entailment"]["metric"] == "exact_match"
    assert result["categories"]["Coreference Resolution"]["metric"] == "exact_match"
    assert result["categories"]["Title Generation"]["metric"] == "rougeL"

    # heedful's own unit: the same means as fractions.
    fractions = M.aggregate(records)
    for section in ("tasks", "categories"):
        for name, scores in fractions[section].items():
            for metric in M.METRICS:
                assert scores[metric] == pytest.approx(result[section][name][metric] / 100, abs=1e-12)
    assert fractions["overall"]["n"] == result["overall"]["n"]


def test_aggregate_max_over_references_and_missing_categories():
    records = [
        {"task": "t1", "id": "1", "prediction": "cat", "references": ["dog", "The cat."]},
        {
            "task": "t1",
            "id": "2",
            "prediction": "dog",
            "references": ["cat"],
            "category": "Word Analogy",
        },
        {
            "task": "t2",
            "id": "1",
            "prediction": "big dog",
            "references": ["a big dog runs"],
            "category": "Data to Text",
        },
    ]
    result = M.aggregate(records)
    # "cat" vs "The cat.": no EM (articles kept); ROUGE-L P=1, R=1/2, F=2/3; "dog" vs "cat": 0.
    assert result["tasks"]["t1"]["exact_match"] == 0.0
    assert result["tasks"]["t1"]["n"] == 2
    assert result["tasks"]["t1"]["rougeL"] == pytest.approx((2 / 3) / 2)
    assert (
        result["tasks"]["t1"]["rougeL"]
        == (ref_rougeL_score("cat", "The cat.") + ref_rougeL_score("dog", "cat")) / 2
    )
    percent = M.aggregate(records, percent=True)  # the reference's 100.0 * sum / n
    assert (
        percent["tasks"]["t1"]["rougeL"]
        == 100.0 * (ref_rougeL_score("cat", "The cat.") + ref_rougeL_score("dog", "cat")) / 2
    )
    assert set(result["categories"]) == {"Word Analogy", "Data to Text"}
    assert result["categories"]["Word Analogy"]["n"] == 1
    assert result["categories"]["Word Analogy"]["metric"] == "exact_match"
    assert result["categories"]["Data to Text"]["metric"] == "rougeL"
    assert result["overall"]["n"] == 3
    custom = M.aggregate(records, category_metric=lambda c: "accuracy")
    assert {v["metric"] for v in custom["categories"].values()} == {"accuracy"}
    with pytest.raises(ValueError):
        M.aggregate([])


def test_superni_category_metric_normalises_names():
    for name in M.EXACT_MATCH_CATEGORIES:
        assert M.superni_category_metric(name) == "exact_match"
        assert M.superni_category_metric("_".join(name.lower().split())) == "exact_match"
    for name in ["Title Generation", "question_rewriting", "Keyword Tagging", "Data to Text"]:
        assert M.superni_category_metric(name) == "rougeL"


def test_round_scores_rounds_floats_only():
    rounded = M.round_scores({"a": {"x": 1 / 3, "n": 3, "metric": "rougeL"}, "b": 2.0}, 4)
    assert rounded == {"a": {"x": 0.3333, "n": 3, "metric": "rougeL"}, "b": 2.0}


# --- Cross-lingual track: GPT-2 style byte-level BPE with "Ġ" stripped.
@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    corpus = [s for s in SPECIAL_STRINGS if s.strip()] * 5 + ["the cat sat on the mat"] * 5
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, show_progress=False)
    path = tmp_path_factory.mktemp("bpe")
    GPT2TokenizerFast(tokenizer_object=bpe._tokenizer).save_pretrained(path)
    return path


def test_xlingual_tokenizer_matches_reference_and_scores_non_latin(bpe_dir):
    from transformers import AutoTokenizer

    gpt = AutoTokenizer.from_pretrained(bpe_dir)
    tok = M.XlingualTokenizer(str(bpe_dir))
    texts = ["机器学习是人工智能的一个分支。", "машинное обучение", "the cat sat", ""]
    for text in texts:
        assert tok.tokenize(text) == [t.lstrip("Ġ") for t in gpt.tokenize(text)]
    reference_scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=tok)
    for prediction in texts:
        for reference in texts:
            expected = reference_scorer.score(target=reference, prediction=prediction)[
                "rougeL"
            ].fmeasure
            assert M.rouge_l(prediction, reference, tokenizer=tok) == expected
    assert M.rouge_l("机器学习", "机器学习", tokenizer=tok) == 1.0
    assert M.rouge_l("机器学习", "机器学习") == 0.0
