"""The experiments of the DopeWolfe chapter: log queries from a design, learn θ̂, count mis-ordered pairs.

Both follow the protocol of the official notebook of the paper's Section 6.1
(arXiv:2412.19396): per run, θ* ~ N(0, I_d); each design logs ``max(budgets)`` queries
i.i.d. from its distribution; the rankings are drawn under θ*; for each budget T the
ridge MLE is fit on the first T queries and scored by the ranking loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from reprobook.checks import check_count
from reprobook.design.frank_wolfe import dope, dopewolfe, random_subsets
from reprobook.design.plackett_luce import check_lists, fit_mle, pair_error_rate, ranking_loss, sample_rankings


def check_budgets(budgets: Sequence[int]) -> list[int]:
    """Return ``budgets`` as a non-empty list of increasing positive query counts."""
    budgets = [check_count("budgets", budget) for budget in budgets]
    if not budgets or budgets != sorted(set(budgets)):
        raise ValueError(f"budgets must be a non-empty increasing list of query counts >= 1, got {budgets}")
    return budgets


def round_design(weights, n: int, min_weight: float = 0.0) -> np.ndarray:
    """An exact design of ``n`` queries from design weights: the efficient rounding of Pukelsheim and Rieder (1992).

    Weights below ``min_weight`` are dropped first and the rest renormalized (Frank-Wolfe
    keeps its start's points with tiny weights, and the rounding gives every support point
    a query). Each support point then gets ⌈(n - ℓ/2) w_i⌉ queries (ℓ the support size);
    the count of the point with the smallest n_i / w_i is raised, or of the largest
    (n_i - 1) / w_i lowered, until the counts sum to n.
    """
    weights = np.asarray(weights, dtype=np.float64)
    n = check_count("n", n)
    if weights.ndim != 1 or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError("weights must be a vector of non-negative numbers that sum to 1")
    if not 0 <= min_weight <= weights.max():
        raise ValueError(f"min_weight must be in [0, the largest weight {weights.max():g}], got {min_weight!r}")
    weights = np.where(weights >= min_weight, weights, 0.0)
    weights /= weights.sum()
    support = weights > 0
    counts = np.zeros(len(weights), dtype=np.int64)
    counts[support] = np.ceil((n - support.sum() / 2) * weights[support])
    while counts.sum() < n:
        ratios = np.where(support, counts / np.where(support, weights, 1), np.inf)
        counts[np.argmin(ratios)] += 1
    while counts.sum() > n:
        ratios = np.where(support & (counts > 0), (counts - 1) / np.where(support, weights, 1), -np.inf)
        counts[np.argmax(ratios)] -= 1
    return counts


def _losses(queries: np.ndarray, budgets: list[int], theta_true, rng, score: Callable[[np.ndarray], float]):
    """The ranking loss after each budget, from rankings of the logged ``queries`` (n, K, d) drawn under θ*."""
    rankings = sample_rankings(queries, theta_true, rng)
    return [score(fit_mle(queries[:budget], rankings[:budget])) for budget in budgets]


def section61_experiment(
    lists, *, runs: int, budgets: Sequence[int], samples: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Section 6.1 comparison of Uniform, Dope and DopeWolfe on the given ``lists``.

    Dope's design does not depend on the run (it is deterministic), so it is computed once;
    DopeWolfe's (``samples`` random lists per iteration) is computed in every run. Returns
    the ranking losses, one row per (run, design, budget), and the design times in seconds,
    one row per (run, design).
    """
    lists = check_lists(lists)
    runs = check_count("runs", runs)
    budgets = check_budgets(budgets)
    n_lists, _, d = lists.shape
    start = time.perf_counter()
    dope_weights = dope(lists).weights
    dope_seconds = time.perf_counter() - start
    rows, times = [], []
    for run in range(runs):
        rng = np.random.default_rng([seed, run])
        theta_true = rng.standard_normal(d)
        start = time.perf_counter()
        wolfe_weights = dope(lists, samples=samples, rng=rng).weights
        designs = {"Uniform": np.full(n_lists, 1.0 / n_lists), "Dope": dope_weights, "DopeWolfe": wolfe_weights}
        times += [(run, "Dope", dope_seconds), (run, "DopeWolfe", time.perf_counter() - start)]
        for name, weights in designs.items():
            logged = lists[rng.choice(n_lists, budgets[-1], p=weights)]
            losses = _losses(logged, budgets, theta_true, rng, lambda theta: ranking_loss(lists, theta_true, theta))
            rows += [(run, name, budget, loss) for budget, loss in zip(budgets, losses)]
    return (
        pd.DataFrame(rows, columns=["run", "design", "queries", "ranking_loss"]),
        pd.DataFrame(times, columns=["run", "design", "seconds"]),
    )


def sample_subsets(weights: Mapping[tuple[int, ...], float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` K-subsets drawn i.i.d. from a design over subsets, shape (n, K)."""
    subsets = np.array(list(weights), dtype=np.int64)
    probabilities = np.array(list(weights.values()))
    return subsets[rng.choice(len(subsets), n, p=probabilities / probabilities.sum())]


def universe_losses(
    items, k: int, designs: Mapping[str, Mapping[tuple[int, ...], float] | None], budgets, theta_true, rng
) -> dict[str, list[float]]:
    """The fraction of mis-ordered item pairs after each budget, for designs over K-subsets of ``items``.

    A design is a map from subsets to weights, or None for Uniform over all C(N, K) subsets.
    """
    budgets = check_budgets(budgets)
    items = np.asarray(items, dtype=np.float64)
    out = {}
    for name, weights in designs.items():
        if weights is None:
            subsets = random_subsets(len(items), k, budgets[-1], rng)
        else:
            subsets = sample_subsets(weights, budgets[-1], rng)
        out[name] = _losses(
            items[subsets], budgets, theta_true, rng, lambda theta: pair_error_rate(items, theta_true, theta)
        )
    return out


def universe_items(n_items: int, d: int, rng: np.random.Generator, smallest_scale: float = 0.1) -> np.ndarray:
    """N item features with scales decaying geometrically from 1 to ``smallest_scale`` over the d
    coordinates, rescaled so the longest has norm 1: directions of unequal value to a design."""
    items = rng.standard_normal((check_count("n_items", n_items, 2), check_count("d", d))) * np.geomspace(
        1.0, smallest_scale, d
    )
    return items / np.linalg.norm(items, axis=1).max()


def universe_experiment(
    items, k: int, *, runs: int, budgets: Sequence[int], samples: int, iterations: int, seed: int = 0, exact: bool
) -> pd.DataFrame:
    """Uniform, DopeWolfe (``samples`` random subsets per iteration) and, when ``exact``, Frank-Wolfe by
    enumeration of all C(N, K) subsets, on K-subsets of ``items``: the mis-ordered item pairs after
    each budget, one row per (run, design, budget). Per run, θ* is a random direction of norm 3."""
    runs = check_count("runs", runs)
    budgets = check_budgets(budgets)
    d = np.shape(items)[1]
    enumerated = (
        dopewolfe(items, k, samples=None, iterations=iterations, rng=np.random.default_rng(seed)) if exact else None
    )
    rows = []
    for run in range(runs):
        rng = np.random.default_rng([seed, run])
        direction = rng.standard_normal(d)
        theta_true = 3 * direction / np.linalg.norm(direction)
        designs = {
            "Uniform": None,
            "DopeWolfe": dopewolfe(items, k, samples=samples, iterations=iterations, rng=rng).weights,
        }
        if exact:
            designs["Frank-Wolfe (all subsets)"] = enumerated.weights
        losses = universe_losses(items, k, designs, budgets, theta_true, rng)
        rows += [(run, name, budget, loss) for name in designs for budget, loss in zip(budgets, losses[name])]
    return pd.DataFrame(rows, columns=["run", "design", "queries", "pair_error"])


def mean_and_error(frame: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """The mean of ``value`` and its standard error over runs, per group of ``by``."""
    grouped = frame.groupby(by, sort=False)[value]
    summary = grouped.agg(["mean", "std", "count"]).reset_index()
    summary["se"] = summary["std"] / np.sqrt(summary["count"])
    return summary.drop(columns="std")


def loglog_slope(sizes, seconds) -> float:
    """The least-squares slope of log(seconds) against log(sizes): the empirical order of growth."""
    sizes = np.log(np.asarray(sizes, dtype=np.float64))
    seconds = np.log(np.asarray(seconds, dtype=np.float64))
    return float(np.polyfit(sizes, seconds, 1)[0]) if len(sizes) > 1 else math.nan
