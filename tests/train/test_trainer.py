from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from heedful.errors import HeedfulError
from heedful.tasks.sampling import select_instances
from heedful.train.checkpoint import latest_checkpoint
from heedful.train.config import LoopConfig
from heedful.train.data import render_examples, tokenize_all
from heedful.train.methods import MethodConfig, apply_method
from heedful.train.trainer import lr_factor, train_loop

REPO = Path(__file__).resolve().parents[2]


def _features(tasks, tokenizer, n=12, seq2seq=False):
    task = tasks[0]
    examples = render_examples(task, select_instances(task, "train", n, seed=0), "none")
    return tokenize_all(examples, tokenizer, is_seq2seq=seq2seq, max_source_length=40, max_target_length=6)


def _instruction_groups(tasks, tokenizer, n=8):
    """Each instance under a reference and a paraphrased instruction: same target.

    The instructions differ at the end of the prompt, which left truncation keeps.
    """
    from heedful.prompts.instruction import Instruction
    from heedful.train.data import flatten_groups, render_instruction_groups

    task = tasks[0]
    instructions = [
        Instruction(id="reference", template="{input}\nAnswer:", kind="observed", collection="test"),
        Instruction(id="paraphrase", template="{input}\nWhat is the answer? Reply:", kind="paraphrase", collection="test"),
    ]
    grouped = render_instruction_groups(task, select_instances(task, "train", n, seed=0), instructions)
    examples, groups = flatten_groups(grouped)
    return tokenize_all(examples, tokenizer, is_seq2seq=False, max_source_length=48, max_target_length=6), groups


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_loss_decreases(arch, tasks, causal_tokenizer, t5_tokenizer, tiny_llama, tiny_t5, tmp_path):
    seq2seq = arch == "t5"
    tokenizer = t5_tokenizer if seq2seq else causal_tokenizer
    model = (tiny_t5 if seq2seq else tiny_llama)(len(tokenizer)).train()
    features = _features(tasks, tokenizer, seq2seq=seq2seq)
    config = LoopConfig(learning_rate=3e-3, epochs=6, batch_size=4)
    result = train_loop(model, tokenizer, features, config, tmp_path, is_seq2seq=seq2seq, show_progress=False)
    per_epoch = len(result.state.losses) // 6
    first, last = result.state.losses[:per_epoch], result.state.losses[-per_epoch:]
    assert sum(last) / len(last) < 0.75 * sum(first) / len(first)
    assert result.state.step == 6 * 3 and latest_checkpoint(tmp_path) == result.checkpoint


def test_resume_in_process_equals_uninterrupted(tasks, causal_tokenizer, tiny_llama, tmp_path):
    features = _features(tasks, causal_tokenizer)
    config = LoopConfig(learning_rate=3e-3, epochs=2, batch_size=2, grad_accum=2, save_every=1)

    def fresh():
        torch.manual_seed(1)
        return apply_method(tiny_llama(len(causal_tokenizer)), MethodConfig(name="lora"), is_seq2seq=False).train()

    full = fresh()
    train_loop(full, causal_tokenizer, features, config, tmp_path / "a", is_seq2seq=False, show_progress=False)
    part = fresh()
    first = LoopConfig(**{**config.__dict__, "max_steps": 4})
    train_loop(part, causal_tokenizer, features, first, tmp_path / "b", is_seq2seq=False, show_progress=False)
    resumed = fresh()  # new model object: weights, optimizer and RNG come from the checkpoint
    result = train_loop(resumed, causal_tokenizer, features, config, tmp_path / "b", is_seq2seq=False, show_progress=False)
    assert result.resumed_from is not None and result.resumed_from.name == "step-00000004"
    expected = _weights(full)
    for name, value in _weights(resumed).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tasks, causal_tokenizer, tiny_llama, tmp_path):
    model = tiny_llama(len(causal_tokenizer)).train()
    features = _features(tasks, causal_tokenizer)
    config = LoopConfig(learning_rate=1e-3, epochs=3, batch_size=2, save_every=2)

    def poison(state):
        if state.step == 3:
            with torch.no_grad():
                model.model.embed_tokens.weight.fill_(float("nan"))

    with pytest.raises(HeedfulError, match=r"step 4: loss is nan .*step-00000002"):
        train_loop(model, causal_tokenizer, features, config, tmp_path, is_seq2seq=False, on_step=poison, show_progress=False)
    good = latest_checkpoint(tmp_path)
    assert good is not None and good.name == "step-00000002"
    assert all(torch.isfinite(t).all() for t in load_file(str(good / "model.safetensors")).values())


def test_lr_schedules():
    constant = LoopConfig()
    assert [lr_factor(s, 10, constant) for s in (0, 5, 9)] == [1.0, 1.0, 1.0]
    linear = LoopConfig(schedule="linear", warmup_steps=2)
    assert [lr_factor(s, 10, linear) for s in (0, 1, 2, 10)] == [0.5, 1.0, 1.0, 0.0]


SCRIPT = """
import json, sys, time
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from heedful.tasks.superni import load_superni
from heedful.tasks.sampling import select_instances
from heedful.train.data import render_examples, tokenize_all
from heedful.train.methods import MethodConfig, apply_method
from heedful.train.config import LoopConfig
from heedful.train.trainer import train_loop

torch.set_num_threads(1)
model_dir, task_file, ckpt, out, sleep = sys.argv[1:6]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
torch.manual_seed(0)
model = apply_method(AutoModelForCausalLM.from_pretrained(model_dir), MethodConfig(name="lora"), is_seq2seq=False).train()
task = load_superni(task_file)[0]
examples = render_examples(task, select_instances(task, "train", 16, seed=0), "none")
features = tokenize_all(examples, tokenizer, is_seq2seq=False, max_source_length=40, max_target_length=6)
config = LoopConfig(learning_rate=3e-3, epochs=2, batch_size=2, grad_accum=2, save_every=2)
result = train_loop(model, tokenizer, features, config, ckpt, is_seq2seq=False, show_progress=False,
                    on_step=lambda state: time.sleep(float(sleep)))
save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}, out)
print("RESUMED_FROM", result.resumed_from)
"""


def _launch(script, tiny_llama_dir, task_file, ckpt, out, sleep):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(script), str(tiny_llama_dir), task_file, str(ckpt), str(out), str(sleep)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_run_resumes_to_the_same_weights(tasks, tiny_llama_dir, tmp_path):
    script = tmp_path / "train_tiny.py"
    script.write_text(SCRIPT)
    task_file = tasks[0].metadata["file"]

    straight = _launch(script, tiny_llama_dir, task_file, tmp_path / "a", tmp_path / "a.safetensors", 0)
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err

    victim = _launch(script, tiny_llama_dir, task_file, tmp_path / "b", tmp_path / "b.safetensors", 0.5)
    deadline = time.time() + 240
    while time.time() < deadline:
        latest = latest_checkpoint(tmp_path / "b")
        if latest is not None and latest.name >= "step-00000004":
            break
        assert victim.poll() is None, victim.communicate()[1]
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "b.safetensors").exists()  # it really died mid-run

    resumed = _launch(script, tiny_llama_dir, task_file, tmp_path / "b", tmp_path / "b.safetensors", 0)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "RESUMED_FROM None" not in out
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("grouped, kl_weight", [(False, 0.0), (True, 0.0), (True, 0.5)])
def test_accumulation_equals_one_larger_batch(
    tasks, causal_tokenizer, tiny_llama, tmp_path, monkeypatch, grouped, kl_weight
):
    """Batch 4 x 1 and batch 2 x 2 accumulated give the same gradient at the first update
    (with instruction groups, a batch counts groups and the KL term is a mean over them)."""
    features, groups = _instruction_groups(tasks, causal_tokenizer, n=4) if grouped else (
        _features(tasks, causal_tokenizer, n=8), None
    )
    seen: list[list[torch.Tensor]] = []
    original = torch.optim.AdamW.step

    def capture(self, *args, **kwargs):
        seen.append([p.grad.detach().clone() for group in self.param_groups for p in group["params"]])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", capture)
    for name, batch, accum in (("big", 4, 1), ("acc", 2, 2)):
        model = tiny_llama(len(causal_tokenizer), seed=0).train()
        config = LoopConfig(
            epochs=1, max_steps=1, batch_size=batch, grad_accum=accum, group_by_length=False, max_grad_norm=None,
            kl_weight=kl_weight,
        )
        train_loop(
            model, causal_tokenizer, features, config, tmp_path / name, is_seq2seq=False, groups=groups,
            show_progress=False,
        )
    big, accumulated = seen
    for a, b in zip(big, accumulated):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)


def test_selective_activation_checkpointing_keeps_the_updates(tasks, causal_tokenizer, tiny_llama, tmp_path):
    """The default recomputes every other layer for full fine-tuning: same weights as keeping all activations."""
    features = _features(tasks, causal_tokenizer, n=8)
    trained, flags = [], []
    for every in (None, 0):
        torch.manual_seed(0)
        model = apply_method(tiny_llama(len(causal_tokenizer), seed=0), MethodConfig(name="full"), is_seq2seq=False).train()
        config = LoopConfig(learning_rate=3e-3, epochs=1, max_steps=2, batch_size=4, activation_checkpoint_every=every)
        train_loop(model, causal_tokenizer, features, config, tmp_path / str(every), is_seq2seq=False, show_progress=False)
        trained.append(_weights(model))
        flags.append([layer.gradient_checkpointing for layer in model.model.layers])
    n = len(flags[0])
    assert n >= 2 and flags[0] == [i % 2 == 0 for i in range(n)] and not any(flags[1])
    for name, value in trained[1].items():
        torch.testing.assert_close(trained[0][name], value, msg=name)


def test_peft_keeps_activations_by_default(tasks, causal_tokenizer, tiny_llama, tmp_path):
    model = apply_method(tiny_llama(len(causal_tokenizer)), MethodConfig(name="lora"), is_seq2seq=False).train()
    config = LoopConfig(epochs=1, max_steps=1, batch_size=4)
    train_loop(model, causal_tokenizer, _features(tasks, causal_tokenizer, n=4), config, tmp_path, is_seq2seq=False, show_progress=False)
    assert not any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())


def test_negative_activation_checkpoint_every_is_refused():
    with pytest.raises(HeedfulError, match="activation_checkpoint_every"):
        LoopConfig(activation_checkpoint_every=-1).validate()


def test_kl_alignment_pulls_paraphrase_predictions_to_the_reference(tasks, causal_tokenizer, tiny_llama, tmp_path):
    """λ = 1 trains the prefix on KL alone: the loss (the KL) falls."""
    features, groups = _instruction_groups(tasks, causal_tokenizer)
    model = apply_method(tiny_llama(len(causal_tokenizer), seed=0), MethodConfig(name="prefix"), is_seq2seq=False).train()
    config = LoopConfig(learning_rate=3e-2, epochs=10, batch_size=4, kl_weight=1.0)
    result = train_loop(
        model, causal_tokenizer, features, config, tmp_path, is_seq2seq=False, groups=groups, show_progress=False
    )
    losses = result.state.losses
    assert result.state.step == 10 * 2 and losses[0] > 0
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4


def test_kl_weight_needs_instruction_groups(tasks, causal_tokenizer, tiny_llama, tmp_path):
    model = tiny_llama(len(causal_tokenizer)).train()
    with pytest.raises(HeedfulError, match="at least two instructions"):
        train_loop(
            model, causal_tokenizer, _features(tasks, causal_tokenizer, n=4), LoopConfig(kl_weight=0.5), tmp_path,
            is_seq2seq=False, show_progress=False,
        )
    with pytest.raises(HeedfulError, match="kl_weight must be between 0 and 1"):
        LoopConfig(kl_weight=1.5).validate()
