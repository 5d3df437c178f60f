"""Model backends: Hugging Face causal and seq2seq models, GGUF files, PEFT adapters.

``load_model(name_or_path, ...)`` returns a backend with one interface for every
architecture: ``loglikelihoods`` (rank classification), ``generate`` (greedy text),
``first_token_hidden_states`` (representation analysis) and
``option_probabilities_after_generation`` (Sun et al. 2023 scoring).
"""

from typing import Any

from heedful.models.registry import ALIASES, list_aliases
from heedful.models.types import Backend, ChoiceRequest, ChoiceScores

__all__ = ["ALIASES", "Backend", "ChoiceRequest", "ChoiceScores", "list_aliases", "load_model"]


def __getattr__(name: str) -> Any:
    # load_model pulls in torch and transformers (1.5 s): importing a config section must not.
    if name == "load_model":
        from heedful.models.loading import load_model

        return load_model
    raise AttributeError(f"module 'heedful.models' has no attribute '{name}'")
