"""Surface noise on the instruction text: word drops and shuffles (Gu et al. 2023), character
typos (PromptBench's DeepWordBug attack). ``{placeholders}`` are never touched.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from heedful.errors import HeedfulError
from heedful.perturbations.template import check_rate, derived, map_literals, round_half_up
from heedful.prompts.instruction import Instruction

_WS = re.compile(r"(\s+)")


def _words(literals: list[str]) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """Tokenise each literal into alternating [word, space, word, ...]; index the words."""
    tokens = [_WS.split(lit) for lit in literals]
    index = [(s, i) for s, toks in enumerate(tokens) for i, tok in enumerate(toks) if i % 2 == 0 and tok]
    return tokens, index


def _stronger_space(a: str, b: str) -> str:
    # Dropping a word joins the spaces around it; keep line structure (newlines) if any.
    return a if a.count("\n") >= b.count("\n") else b


def drop_words(text: str, rate: float, seed: int) -> str:
    """Delete ``round(rate * n)`` randomly chosen words of a template's literal text.

    Words are whitespace-separated tokens outside placeholders; the spaces around a
    dropped word collapse to one run (keeping a newline if either side had one).
    """
    check_rate(rate)

    def fn(literals: list[str]) -> list[str]:
        tokens, index = _words(literals)
        k = round_half_up(rate * len(index))
        dropped = set(random.Random(seed).sample(index, k))
        out = []
        for s, toks in enumerate(tokens):
            kept = [t for i, t in enumerate(toks) if t and (s, i) not in dropped]
            merged: list[str] = []
            for tok in kept:
                if tok.isspace() and merged and merged[-1].isspace():
                    merged[-1] = _stronger_space(merged[-1], tok)
                else:
                    merged.append(tok)
            out.append("".join(merged))
        return out

    return map_literals(text, fn)


def shuffle_words(text: str, rate: float, seed: int) -> str:
    """Move ``round(rate * n)`` randomly chosen words of the literal text among themselves.

    The chosen positions are permuted cyclically in a random order, so every chosen word
    leaves its place (a derangement); whitespace and placeholders stay where they are.
    """
    check_rate(rate)

    def fn(literals: list[str]) -> list[str]:
        tokens, index = _words(literals)
        k = round_half_up(rate * len(index))
        if k < 2:
            return literals
        order = random.Random(seed).sample(index, k)
        moved = {order[i]: tokens[order[(i + 1) % k][0]][order[(i + 1) % k][1]] for i in range(k)}
        for (s, i), word in moved.items():
            tokens[s][i] = word
        return ["".join(toks) for toks in tokens]

    return map_literals(text, fn)


_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    # Keys touching each key on a staggered QWERTY keyboard: left/right on the row, the
    # two keys above (same column and one right) and the two below (one left, same column).
    pos = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}
    out = {}
    for ch, (r, c) in pos.items():
        cand = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        out[ch] = "".join(
            _QWERTY_ROWS[rr][cc] for rr, cc in cand if 0 <= rr < 3 and 0 <= cc < len(_QWERTY_ROWS[rr])
        )
    return out


QWERTY_NEIGHBOURS = _qwerty_neighbours()
TYPO_OPERATIONS = ("insert", "delete", "swap", "substitute")


def _near_key(ch: str, rng: random.Random) -> str:
    near = rng.choice(QWERTY_NEIGHBOURS[ch.lower()])
    return near.upper() if ch.isupper() else near


def _typo(word: str, rng: random.Random) -> str:
    """One DeepWordBug edit of ``word`` at an ASCII letter; the result always differs."""
    letters = [i for i, ch in enumerate(word) if ch.lower() in QWERTY_NEIGHBOURS]
    op = rng.choice(TYPO_OPERATIONS)
    i = rng.choice(letters)
    if op == "swap":
        pairs = [j for j in letters if j + 1 < len(word) and word[j + 1].isalpha() and word[j] != word[j + 1]]
        if pairs:
            j = rng.choice(pairs)
            return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        op = "substitute"
    if op == "delete" and len(word) > 1:
        return word[:i] + word[i + 1 :]
    if op == "insert":
        return word[: i + 1] + _near_key(word[i], rng) + word[i + 1 :]
    return word[:i] + _near_key(word[i], rng) + word[i + 1 :]


def char_typos(text: str, rate: float, seed: int) -> str:
    """Give ``round(rate * n)`` random words of the literal text one character-level typo.

    As PromptBench's character-level attack (DeepWordBug, via TextAttack): each chosen
    word gets one of *insert* a key adjacent on a QWERTY keyboard, *delete* a letter,
    *swap* two neighbouring letters, or *substitute* a letter by an adjacent key. ``n``
    counts the words with at least one ASCII letter; placeholders are never touched.
    """
    check_rate(rate)

    def fn(literals: list[str]) -> list[str]:
        tokens, index = _words(literals)
        index = [(s, i) for s, i in index if any(ch.lower() in QWERTY_NEIGHBOURS for ch in tokens[s][i])]
        rng = random.Random(seed)
        chosen = rng.sample(index, round_half_up(rate * len(index)))
        for s, i in sorted(chosen):
            tokens[s][i] = _typo(tokens[s][i], rng)
        return ["".join(toks) for toks in tokens]

    return map_literals(text, fn)


NOISE: dict[str, Callable[[str, float, int], str]] = {
    "drop_words": drop_words,
    "shuffle_words": shuffle_words,
    "char_typos": char_typos,
}


def noisy_instruction(instruction: Instruction, noise: str, *, rate: float, seed: int) -> Instruction:
    """``instruction`` with surface noise (``drop_words``, ``shuffle_words``, ``char_typos``).

    Only the template's literal text changes; option rendering, label maps and every
    placeholder stay as they were, so the result renders wherever the source did.
    """
    if noise not in NOISE:
        raise HeedfulError(f"unknown noise '{noise}'; expected one of {', '.join(NOISE)}")
    template = NOISE[noise](instruction.template, rate, seed)
    return derived(instruction, noise, template, f"{noise}({rate:g},{seed})", rate=rate, seed=seed)


