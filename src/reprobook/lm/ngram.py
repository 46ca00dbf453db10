"""Modified interpolated Kneser-Ney n-gram models: the strongest classical baseline of a tiny LM.

Chen and Goodman's *modified* Kneser-Ney smoothing, interpolated (Chen and Goodman,
1999, "An empirical study of smoothing techniques for language modeling"). For a
context h = (h_1, ..., h_{k-1}) and its suffix h' = (h_2, ..., h_{k-1}),

    p_k(w | h) = [ max(c_k(h w) - D_k(c_k(h w)), 0) + γ_k(h) · p_{k-1}(w | h') ] / c_k(h •),
    γ_k(h) = D_k(1) N_1(h •) + D_k(2) N_2(h •) + D_k(3+) N_3+(h •),

where at the highest order c_k counts the n-grams of the training tokens and at every
lower order c_k(h w) is the *continuation count* N1+(• h w), the number of distinct
tokens seen before h w; c_k(h •) = Σ_w c_k(h w), and N_j(h •) is the number of w with
c_k(h w) = j (N_3+ : at least 3). A context never seen (c_k(h •) = 0) passes its
whole mass to p_{k-1}. The recursion ends in the uniform distribution over the
vocabulary, p_0(w) = 1/V, so every token has a positive probability and each p_k
sums to one. The discounts of each order come from its counts of counts n_j (the
number of n-grams of that order with count j): with Y = n_1 / (n_1 + 2 n_2),

    D(1) = 1 − 2Y n_2/n_1,   D(2) = 2 − 3Y n_3/n_2,   D(3+) = 3 − 4Y n_4/n_3,

falling back to D(j) = Y for every j (plain Kneser-Ney) when n_3 or n_4 is zero, and to
D(j) = 1/2 when n_1 or n_2 is zero (tiny vocabularies, never a real corpus).

Everything is vectorized with NumPy: the n-grams of order k are coded as integers in
base V, counted with ``np.unique`` and looked up with ``np.searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reprobook.lm.evaluate import check_tokens


@dataclass(frozen=True)
class _OrderCounts:
    """The counts of one order k: sorted n-gram codes with their counts, and per-context sums."""

    codes: np.ndarray  # sorted codes of the n-grams (h w) of this order
    counts: np.ndarray  # c_k(h w)
    context_codes: np.ndarray  # sorted codes of the contexts h
    context_totals: np.ndarray  # c_k(h •)
    context_backoff: np.ndarray  # γ_k(h)
    discounts: np.ndarray  # (0, D(1), D(2), D(3+)), indexed by min(count, 3)


def modified_discounts(counts: np.ndarray) -> np.ndarray:
    """(0, D(1), D(2), D(3+)) of modified Kneser-Ney from the counts of one order."""
    n1, n2, n3, n4 = (np.count_nonzero(counts == j) for j in (1, 2, 3, 4))
    if min(n1, n2) == 0:
        return np.array([0.0, 0.5, 0.5, 0.5])
    y = n1 / (n1 + 2 * n2)
    if min(n3, n4) == 0:
        return np.array([0.0, y, y, y])
    return np.array([0.0, 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == query, else 0 (keys sorted)."""
    if keys.size == 0:
        return np.zeros(query.shape, dtype=values.dtype)
    index = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return np.where(keys[index] == query, values[index], 0)


def _codes(tokens: np.ndarray, order: int, vocabulary_size: int) -> np.ndarray:
    """The integer code of every window of ``order`` consecutive tokens."""
    windows = np.lib.stride_tricks.sliding_window_view(tokens, order)
    powers = vocabulary_size ** np.arange(order - 1, -1, -1, dtype=np.int64)
    return windows.astype(np.int64) @ powers


class KneserNey:
    """A modified interpolated Kneser-Ney model of ``order`` (see the module's docstring).

    Fit on a 1-D stream of token ids below ``vocabulary_size``; ``probabilities`` then
    gives p(w_t | the ``order - 1`` tokens before it).
    """

    def __init__(self, train_tokens, vocabulary_size: int, order: int = 4):
        if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= 6:
            raise ValueError(f"order must be an integer from 1 to 6, got {order!r}")
        if not isinstance(vocabulary_size, int) or vocabulary_size < 2:
            raise ValueError(f"vocabulary_size must be an integer >= 2, got {vocabulary_size!r}")
        if vocabulary_size**order >= 2**62:
            raise ValueError(f"vocabulary_size ** order must fit in 62 bits, got {vocabulary_size}^{order}")
        tokens = check_tokens("train_tokens", train_tokens, order + 1).numpy().astype(np.int64)
        if tokens.min() < 0 or tokens.max() >= vocabulary_size:
            raise ValueError(f"train_tokens must lie in [0, {vocabulary_size}), got [{tokens.min()}, {tokens.max()}]")
        self.order = order
        self.vocabulary_size = vocabulary_size
        self.levels = [self._count(tokens, k, highest=k == order) for k in range(1, order + 1)]

    def _count(self, tokens: np.ndarray, k: int, highest: bool) -> _OrderCounts:
        V = self.vocabulary_size
        if highest:
            codes, counts = np.unique(_codes(tokens, k, V), return_counts=True)
        else:  # continuation counts: distinct (k+1)-grams sharing their last k tokens
            longer = np.unique(_codes(tokens, k + 1, V))
            codes, counts = np.unique(longer % V**k, return_counts=True)
        contexts = codes // V
        context_codes, start = np.unique(contexts, return_index=True)
        discounts = modified_discounts(counts)
        totals = np.add.reduceat(counts, start)
        backoff = np.add.reduceat(discounts[np.minimum(counts, 3)], start)
        return _OrderCounts(codes, counts, context_codes, totals, backoff, discounts)

    def probabilities(self, tokens, start: int | None = None, block_size: int | None = None) -> np.ndarray:
        """p(tokens[t] | up to ``order - 1`` tokens before it) for t = start, ..., len(tokens) - 1.

        ``start`` defaults to ``order - 1`` (every prediction has its full context); an
        earlier start uses the shorter contexts of the first tokens. With ``block_size``,
        the context never reaches back across a multiple of ``block_size`` and the first
        token of every block is not predicted (blocks scored on their own).
        """
        tokens = check_tokens("tokens", tokens, 1).numpy().astype(np.int64)
        if tokens.min() < 0 or tokens.max() >= self.vocabulary_size:
            raise ValueError(f"tokens must lie in [0, {self.vocabulary_size})")
        positions = np.arange(self.order - 1 if start is None else start, tokens.size)
        within = positions
        if block_size is not None:
            within = positions % block_size
            positions, within = positions[within > 0], within[within > 0]
        lengths = np.minimum(within, self.order - 1)
        result = np.empty(positions.size)
        for length in range(self.order):
            chosen = lengths == length
            if chosen.any():
                result[chosen] = self._conditional(tokens, positions[chosen], length)
        return result

    def _conditional(self, tokens: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
        """Interpolated probabilities of predictions whose contexts hold ``length`` tokens."""
        V = self.vocabulary_size
        p = np.full(positions.size, 1.0 / V)
        for k in range(1, length + 2):  # from unigrams up to the order the context allows
            level = self.levels[k - 1]
            codes = np.zeros(positions.size, dtype=np.int64)
            for offset in range(k - 1, -1, -1):
                codes = codes * V + tokens[positions - offset]
            context = codes // V
            total = _lookup(level.context_codes, level.context_totals, context).astype(float)
            backoff = _lookup(level.context_codes, level.context_backoff, context)
            count = _lookup(level.codes, level.counts, codes)
            discounted = np.maximum(count - level.discounts[np.minimum(count, 3)], 0.0)
            seen = total > 0
            p = np.where(seen, (discounted + backoff * p) / np.where(seen, total, 1.0), p)
        return p


def kneser_ney_perplexity(
    train_tokens, eval_tokens, vocabulary_size: int, order: int = 4, block_size: int | None = None
) -> float:
    """Per-token perplexity of a modified interpolated Kneser-Ney model on ``eval_tokens``.

    With ``block_size``, the evaluated tokens are cut into the same non-overlapping blocks
    as :func:`reprobook.lm.evaluate.perplexity` (the ragged tail dropped) and each block is
    scored on its own, so the n-gram model predicts exactly the tokens that a transformer
    with that context predicts.
    """
    model = KneserNey(train_tokens, vocabulary_size, order)
    tokens = check_tokens("eval_tokens", eval_tokens)
    if block_size is not None:
        if not isinstance(block_size, int) or block_size < 2 or tokens.numel() < block_size:
            raise ValueError(f"block_size must be an integer from 2 to len(eval_tokens), got {block_size!r}")
        tokens = tokens[: tokens.numel() // block_size * block_size]
    probabilities = model.probabilities(tokens, start=1, block_size=block_size)
    return float(np.exp(-np.log(probabilities).mean()))
