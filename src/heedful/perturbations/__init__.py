"""Altered instructions: text perturbations and model-based variants (paraphrase, closest)."""
