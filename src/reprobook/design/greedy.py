"""Greedy log-det selection of sentences (FisherSFT, arXiv:2505.14826) and the baselines it is compared with.

A sentence is a block of token embeddings X_i (M_i × d); its information is
A_i = X_iᵀX_i. FisherSFT selects n sentences S that maximize

    F(S) = log det(γ I + Σ_{i∈S} A_i),

a bound on the log-determinant of the Fisher information of the language model's head
(multinomial logistic regression) that does not depend on the vocabulary. F is monotone
submodular, so greedy selection is within 1 - 1/e of the best (Nemhauser, Wolsey and
Fisher, 1978). The gain of a sentence is, by the matrix determinant lemma,

    F(S ∪ {i}) - F(S) = log det(I + X_i V⁻¹ X_iᵀ),   V = γ I + Σ_{i∈S} A_i,

and V⁻¹ follows each choice by a Woodbury update (:mod:`reprobook.design.logdet`).

Blocks are passed as one array ``(N, M, d)``; sentences shorter than M are padded with
rows of zeros, which change neither A_i nor any gain (:func:`pad_blocks`).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reprobook.checks import check_count, check_real, finite_array
from reprobook.design.logdet import determinant_lemma_gains, log_det, woodbury

MODES = ("exact", "lazy", "stochastic")


@dataclass
class Selection:
    """The chosen sentences in the order chosen, F after each choice, and the gains evaluated."""

    indices: np.ndarray
    objective: np.ndarray
    evaluations: int


def pad_blocks(sentences: Sequence[np.ndarray]) -> np.ndarray:
    """Stack sentences of M_i × d token embeddings into ``(N, max M_i, d)``, padding with zero rows."""
    if len(sentences) == 0:
        raise ValueError("sentences must not be empty: the pool needs at least one sentence")
    arrays = [finite_array(f"sentences[{i}]", s) for i, s in enumerate(sentences)]
    widths = {a.shape[-1] if a.ndim == 2 else None for a in arrays}
    if None in widths or len(widths) != 1:
        raise ValueError(
            f"every sentence must be a (tokens, d) array with the same d, got widths {sorted(map(str, widths))}"
        )
    blocks = np.zeros((len(arrays), max(a.shape[0] for a in arrays), widths.pop()))
    for i, array in enumerate(arrays):
        blocks[i, : len(array)] = array
    return blocks


def check_pool(blocks, n: int) -> tuple[np.ndarray, int]:
    """Return the blocks as a finite ``(N, M, d)`` array and the budget, checked against the pool's size."""
    blocks = finite_array("blocks", blocks)
    if blocks.ndim != 3:
        raise ValueError(f"blocks must have shape (N sentences, M tokens, d), got {blocks.shape}")
    if blocks.shape[0] == 0:
        raise ValueError("blocks must not be empty: the pool needs at least one sentence")
    n = check_count("n", n)
    if n > blocks.shape[0]:
        raise ValueError(f"n must be at most the pool's size {blocks.shape[0]}, got {n}")
    return blocks, n


def logdet_objective(blocks, indices, gamma: float = 1.0) -> float:
    """F(S) = log det(γ I + Σ_{i∈S} X_iᵀX_i), computed directly."""
    blocks = finite_array("blocks", blocks)
    chosen = blocks[np.asarray(indices, dtype=np.int64)].reshape(-1, blocks.shape[-1])
    return log_det(check_real("gamma", gamma, 0.0, open_lower=True) * np.eye(blocks.shape[-1]) + chosen.T @ chosen)


def greedy_logdet(
    blocks,
    n: int,
    *,
    gamma: float = 1.0,
    mode: str = "lazy",
    candidates: int = 256,
    token_weights=None,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Select ``n`` sentences greedily for F(S) = log det(γ I + Σ_{i∈S} X_iᵀX_i), each at most once.

    - ``"exact"`` evaluates the gain of every remaining sentence at every step;
    - ``"lazy"`` (Minoux's accelerated greedy) keeps the gains of earlier steps as upper
      bounds (gains only shrink as V grows) and re-evaluates a sentence only when its bound
      tops the queue: the same choices as exact greedy, with far fewer evaluations;
    - ``"stochastic"`` takes the best of ``candidates`` random remaining sentences per step.

    ``token_weights`` (N, M), if given, weighs each token's information, A_i = Σ_j w_ij x_ij x_ijᵀ:
    the probability-weighted variant, with w = 1 - ‖p‖² the trace of the token's softmax
    covariance (:func:`softmax_weights`). Ties go to the lowest index.
    """
    blocks, n = check_pool(blocks, n)
    gamma = check_real("gamma", gamma, 0.0, open_lower=True)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if token_weights is not None:
        weights = finite_array("token_weights", token_weights, shape=blocks.shape[:2])
        if np.any(weights < 0):
            raise ValueError("token_weights must be non-negative")
        blocks = blocks * np.sqrt(weights)[:, :, None]
    rng = np.random.default_rng(0) if rng is None else rng
    d = blocks.shape[-1]
    inverse = np.eye(d) / gamma
    objective = [d * np.log(gamma)]
    chosen: list[int] = []
    remaining = np.ones(len(blocks), dtype=bool)
    evaluations = 0
    queue: list[tuple[float, int]] = []
    if mode == "lazy":
        gains = determinant_lemma_gains(inverse, blocks)
        evaluations += len(blocks)
        queue = [(-gain, i) for i, gain in enumerate(gains)]
        heapq.heapify(queue)
    for _ in range(n):
        if mode == "lazy":
            while True:
                _, i = heapq.heappop(queue)
                gain = float(determinant_lemma_gains(inverse, blocks[i : i + 1])[0])
                evaluations += 1
                if not queue or (-gain, i) <= queue[0]:
                    break
                heapq.heappush(queue, (-gain, i))
        else:
            pool = np.flatnonzero(remaining)
            if mode == "stochastic" and len(pool) > candidates:
                pool = np.sort(rng.choice(pool, candidates, replace=False))
            gains = determinant_lemma_gains(inverse, blocks[pool])
            evaluations += len(pool)
            best = int(np.argmax(gains))
            i, gain = int(pool[best]), float(gains[best])
        chosen.append(i)
        remaining[i] = False
        inverse = woodbury(inverse, blocks[i].T)[0]
        objective.append(objective[-1] + gain)
    return Selection(indices=np.array(chosen), objective=np.array(objective), evaluations=evaluations)


def subspace_sentences(
    n_sentences: int,
    tokens: int,
    d: int,
    rng: np.random.Generator,
    max_rank: int = 3,
    scales: tuple[float, float] = (0.2, 1.0),
    equal_trace: bool = False,
) -> np.ndarray:
    """Synthetic heterogeneous sentences ``(N, tokens, d)``: each lives in a random subspace of
    dimension 1 to ``max_rank``, at a random scale in ``scales`` ([0.2, 1] by default), the regime
    where selection matters.

    Sentences then differ in two ways: in the directions they cover and in how much information
    tr A_i = ‖X_i‖²_F they carry (the scale, and the rank: E tr A_i = tokens · rank · scale²).
    ``equal_trace=True`` removes the second: every sentence is rescaled to the pool's mean tr A_i,
    so that only the directions differ, and a selection can gain only by diversity.
    """
    n_sentences, tokens, d, max_rank = (
        check_count(name, v)
        for name, v in (("n_sentences", n_sentences), ("tokens", tokens), ("d", d), ("max_rank", max_rank))
    )
    low, high = (check_real("scales", v, 0.0, open_lower=True) for v in scales)
    if low > high:
        raise ValueError(f"scales must be (low, high) with low <= high, got {scales}")
    blocks = np.zeros((n_sentences, tokens, d))
    for i in range(n_sentences):
        basis = rng.standard_normal((rng.integers(1, max_rank + 1), d))
        blocks[i] = rng.uniform(low, high) * rng.standard_normal((tokens, len(basis))) @ basis / np.sqrt(d)
    if equal_trace:
        traces = sentence_traces(blocks)
        blocks *= np.sqrt(traces.mean() / traces)[:, None, None]
    return blocks


def sentence_traces(blocks) -> np.ndarray:
    """tr A_i = ‖X_i‖²_F of every sentence of ``blocks`` (N, M, d): the information it adds to V's trace."""
    blocks = finite_array("blocks", blocks)
    if blocks.ndim != 3:
        raise ValueError(f"blocks must have shape (N sentences, M tokens, d), got {blocks.shape}")
    return np.einsum("ntd,ntd->n", blocks, blocks)


def largest_trace(blocks, n: int) -> np.ndarray:
    """The scale baseline: the ``n`` sentences with the largest tr A_i, largest first (ties: lowest index).

    It sees how much information each sentence carries but not in which directions: what
    FisherSFT gains over it is what diversity adds to picking strong sentences. Traces equal
    to round-off (relative 1e-9) tie, so that the choice never depends on how a machine rounds.
    """
    blocks, n = check_pool(blocks, n)
    traces = sentence_traces(blocks)
    key = np.round(traces / max(traces.max(), np.finfo(float).tiny), 9)
    return np.argsort(-key, kind="stable")[:n]


def longest_first(lengths, rng: np.random.Generator) -> np.ndarray:
    """The length baseline: every sentence, longest first, sentences of equal length in random order."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or len(lengths) == 0 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be a non-empty 1-d integer array, got {lengths.dtype} {lengths.shape}")
    if np.any(lengths < 0):
        raise ValueError("lengths must be non-negative")
    shuffled = rng.permutation(len(lengths))
    return shuffled[np.argsort(-lengths[shuffled], kind="stable")]


def token_matched(order, lengths, tokens: int) -> np.ndarray:
    """The prefix of ``order`` whose sentences hold the number of tokens closest to ``tokens``.

    Compares selections at an equal number of tokens rather than of sentences: a method that
    picks long sentences is then matched with as many tokens of a baseline's sentences. Of two
    prefixes equally close, the shorter; at least one sentence.
    """
    order = np.asarray(order, dtype=np.int64)
    lengths = np.asarray(lengths)
    if order.ndim != 1 or len(order) == 0:
        raise ValueError(f"order must be a non-empty 1-d array of sentence indices, got shape {order.shape}")
    if lengths.ndim != 1 or order.min() < 0 or order.max() >= len(lengths):
        raise ValueError(f"order must index lengths (a 1-d array of {len(lengths)} sentence lengths)")
    tokens = check_count("tokens", tokens)
    cumulative = np.cumsum(lengths[order])
    return order[: int(np.argmin(np.abs(cumulative - tokens))) + 1]


def softmax_weights(probabilities) -> np.ndarray:
    """1 - ‖p‖², the trace of diag(p) - ppᵀ, of every token's predicted distribution p (last axis)."""
    probabilities = finite_array("probabilities", probabilities)
    return 1.0 - np.sum(probabilities**2, axis=-1)


def uniform_selection(pool_size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct sentences drawn uniformly from the pool."""
    pool_size = check_count("pool_size", pool_size)
    n = check_count("n", n)
    if n > pool_size:
        raise ValueError(f"n must be at most the pool's size {pool_size}, got {n}")
    return rng.choice(pool_size, n, replace=False)


def mean_pooled(blocks, lengths=None) -> np.ndarray:
    """Each sentence's mean token embedding, shape (N, d); ``lengths`` excludes the padding rows."""
    blocks = finite_array("blocks", blocks)
    lengths = np.full(len(blocks), blocks.shape[1]) if lengths is None else np.asarray(lengths)
    return blocks.sum(axis=1) / lengths[:, None]


def pooled_d_optimal(blocks, n: int, *, gamma: float = 1.0, lengths=None) -> Selection:
    """The D-optimal baseline: greedy log det over mean-pooled sentence embeddings (one vector per sentence)."""
    return greedy_logdet(mean_pooled(blocks, lengths)[:, None, :], n, gamma=gamma, mode="lazy")


def k_center(points, n: int, rng: np.random.Generator) -> np.ndarray:
    """The k-center coverage baseline: farthest-first traversal from a random start (Gonzalez, 1985)."""
    points = finite_array("points", points)
    if points.ndim != 2 or len(points) == 0:
        raise ValueError(f"points must have shape (N, d) with N >= 1, got {points.shape}")
    n = check_count("n", n)
    if n > len(points):
        raise ValueError(f"n must be at most the number of points {len(points)}, got {n}")
    chosen = [int(rng.integers(len(points)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(n - 1):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def selection_orders(
    blocks, n: int, rng: np.random.Generator, *, lengths=None, token_weights=None, gamma: float = 1.0
) -> dict[str, np.ndarray]:
    """Each method's first ``n`` sentences in the order it picks them; its first k are its choice at budget k.

    ``uniform`` (a random order), ``FisherSFT`` (lazy greedy on the token blocks), ``pooled
    D-optimal`` (greedy on mean-pooled embeddings), ``k-center`` (farthest-first on them) and,
    when ``token_weights`` are given, ``FisherSFT weighted`` (:func:`greedy_logdet`'s weights).
    """
    blocks, n = check_pool(blocks, n)
    pooled = mean_pooled(blocks, lengths)
    orders = {
        "uniform": uniform_selection(len(blocks), n, rng),
        "FisherSFT": greedy_logdet(blocks, n, gamma=gamma).indices,
        "pooled D-optimal": pooled_d_optimal(blocks, n, gamma=gamma, lengths=lengths).indices,
        "k-center": k_center(pooled, n, rng),
    }
    if token_weights is not None:
        orders["FisherSFT weighted"] = greedy_logdet(blocks, n, gamma=gamma, token_weights=token_weights).indices
    return orders
