"""Option scoring after generation, as Sun et al. (2023) evaluate multiple-choice tasks.

Mirrors ``LogitsMetric.classify`` and ``LitDataModule.collate`` of their code
(jiudingsun01/InstructionEval, ``metrics.py`` / ``inference_modules.py``):

1. The prompt is decoded greedily (they call ``generate`` with ``max_new_tokens=32`` and
   ``output_scores=True``); step ``k`` gives a distribution ``p_k`` over the vocabulary,
   conditioned on the *generated* tokens before it, not on the option's.
2. Each option is tokenised on its own with the tokenizer's defaults (T5 keeps its
   closing ``</s>``; LLaMA's leading ``<s>`` is removed).
3. ``n = min`` over the options of their token counts (and at most the number of steps
   generated); the score of option ``j`` is ``prod_{k < n} p_k(option_j[k])``.
4. The prediction is the option with the highest score.

Difference, on purpose: their batched ``generate`` keeps producing scores for a row that
has already emitted EOS (conditioned on padding) while other rows run on; here a row's
steps end at its own EOS, which is what their code computes with a batch of one, so the
result does not depend on how prompts are batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def option_probabilities(step_logprobs: torch.Tensor, options: Sequence[Sequence[int]], n_steps: int) -> tuple[float, ...]:
    """Product of each option's token probabilities over the first generated steps.

    ``step_logprobs`` is ``[steps, vocab]`` log-probabilities of one generated row;
    ``options`` the token ids of each option; ``n_steps`` how many steps the row
    actually generated (up to and including its EOS).
    """
    n = min(min(len(o) for o in options), n_steps, step_logprobs.shape[0])
    scores = []
    for option in options:
        ids = torch.tensor(list(option[:n]), dtype=torch.long, device=step_logprobs.device)
        # Summing log-probabilities is the product of probabilities without underflow steps.
        logp = step_logprobs[torch.arange(n, device=step_logprobs.device), ids].double().sum()
        scores.append(float(torch.exp(logp)))
    return tuple(scores)
