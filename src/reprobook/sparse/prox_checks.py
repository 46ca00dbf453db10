"""Independent checks of the 2:4 proximal operator, and groups built to break it.

Two ways to find the least value of 1/2 ||w - z||^2 + lam R(w) that share no code and no
candidate structure with :func:`reprobook.sparse.prox.prox_24`:

* :func:`prox_value_brute_force`: bounded local searches on every one of the 16 supports in
  the original coordinates, assuming nothing (slow: a fraction of a second per group);
* :func:`prox_value_grid`: a refined grid search over the two smallest entries of the
  answer with the two largest solved exactly (10^5 groups in seconds).

:func:`near_tie_groups` draws the groups where a solver is most likely to go wrong: exact and
near ties between neighbouring magnitudes.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import minimize


def near_tie_groups(count: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Groups built to break a 2:4 prox: exact and near ties between neighbours at every position.

    Sorted magnitudes start at a random top value and fall by gaps drawn from 0 (a tie) up to
    30% of it, with many gaps between 1e-9 and 1e-2; then each group is shuffled and given
    random signs and a scale from 1e-2 to 10. lambda is drawn per group so that lam * z spans
    1e-3 to 3e3, every regime from four shrunk entries to two, in about 200 distinct values
    (so that the groups of each value go through the operator at once). Returns the groups,
    shape (count, 4), and their lambdas, shape (count,).
    """
    rng = np.random.default_rng(seed)
    gaps = rng.choice([0, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2, 0.1, 0.3], size=(count, 3)) * rng.uniform(0, 1, (count, 3))
    magnitudes = np.clip(1 - np.concatenate([np.zeros((count, 1)), np.cumsum(gaps, 1)], 1), 0, None)
    magnitudes = rng.permuted(magnitudes, axis=1) * rng.uniform(0.05, 1, (count, 1))
    scale = 10 ** rng.choice(np.arange(-2, 1.25, 0.5), size=(count, 1))
    groups = magnitudes * rng.choice([-1.0, 1.0], size=(count, 4)) * scale
    log_lams = rng.choice(np.arange(-3, 3.75, 0.25), size=count) - np.log10(scale[:, 0])
    return torch.tensor(groups), 10**log_lams


def prox_value_brute_force(z, lam: float, starts: int = 4, seed: int = 0) -> float:
    """The least value of 1/2 ||w - z||^2 + lam R(w) found by local searches on every support.

    An independent check of :func:`prox_24`, slow and assumption-free: for each of the 16
    supports, L-BFGS-B from ``z`` restricted to it and from random points below it.
    It does not use the sign, order or candidate structure that the prox relies on.
    """
    z = np.asarray(z, dtype=np.float64)
    rng = np.random.default_rng(seed)

    def objective(w):
        a = np.abs(w)
        return 0.5 * np.sum((w - z) ** 2) + lam * (a[0] * a[1] * (a[2] + a[3]) + a[2] * a[3] * (a[0] + a[1]))

    best = objective(np.zeros(4))
    for size in range(1, 5):
        for support in map(list, itertools.combinations(range(4), size)):

            def restricted(x, support=support):
                w = np.zeros(4)
                w[support] = x
                return objective(w)

            for start in range(starts):
                x0 = z[support] * (rng.uniform(0, 1.2, size) if start else 1.0)
                result = minimize(restricted, x0, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
                best = min(best, float(result.fun))
    return best


def _best_first_two(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmin over w1, w2 >= 0 of 1/2 (w1 - a)^2 + 1/2 (w2 - b)^2 + c w1 w2, elementwise (c >= 0).

    The candidates are the interior stationary point (when c < 1 and it lies in the
    quadrant) and the minimizers on the two edges and the corner; the best one is returned.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = ((a - c * b) / (1 - c**2), (b - c * a) / (1 - c**2))
    options = [interior, (np.maximum(a, 0), 0 * a), (0 * a, np.maximum(b, 0))]
    best, best_value = None, None
    for w1, w2 in options:
        valid = np.isfinite(w1) & np.isfinite(w2) & (w1 >= 0) & (w2 >= 0)
        value = np.where(valid, 0.5 * (w1 - a) ** 2 + 0.5 * (w2 - b) ** 2 + c * w1 * w2, np.inf)
        if best is None:
            best, best_value = (np.where(valid, w1, 0), np.where(valid, w2, 0)), value
        else:
            better = value < best_value
            best = (np.where(better, w1, best[0]), np.where(better, w2, best[1]))
            best_value = np.minimum(value, best_value)
    return best


def prox_value_grid(z, lam: float, points: int = 17, rounds: int = 4) -> np.ndarray:
    """The least prox objective of each group found by a refined grid search: a fast, independent check.

    For the sorted magnitudes of each group (the prox keeps their order), a grid over the
    two smallest entries (w3, w4) of the answer, with the two largest solved exactly for
    each grid point (a 2-variable quadratic, :func:`_best_first_two`), then ``rounds``
    zooms of the grid around its best point. It shares no code and no candidate
    structure with :func:`prox_24`; unlike :func:`prox_value_brute_force` it checks
    10^5 groups in seconds. Returns the values, shape (G,).
    """
    z = np.sort(np.abs(np.asarray(z, dtype=np.float64).reshape(-1, 4)), axis=1)[:, ::-1]
    z1, z2, z3, z4 = (z[:, k, None, None] for k in range(4))
    low = np.zeros((len(z), 2))
    high = z[:, 2:].copy()
    best = np.full(len(z), np.inf)
    for _ in range(rounds):
        grid = np.linspace(0, 1, points)
        t = low[:, 0, None, None] + (high[:, 0] - low[:, 0])[:, None, None] * grid[None, :, None]
        u = low[:, 1, None, None] + (high[:, 1] - low[:, 1])[:, None, None] * grid[None, None, :]
        w1, w2 = _best_first_two(z1 - lam * t * u, z2 - lam * t * u, lam * (t + u))
        e3 = w1 * w2 * (t + u) + t * u * (w1 + w2)
        value = 0.5 * ((w1 - z1) ** 2 + (w2 - z2) ** 2 + (t - z3) ** 2 + (u - z4) ** 2) + lam * e3
        flat = value.reshape(len(z), -1)
        index = flat.argmin(1)
        best = np.minimum(best, flat[np.arange(len(z)), index])
        i, j = np.unravel_index(index, (points, points))
        width = (high - low) / (points - 1)
        centre = low + width * np.stack([i, j], axis=1)
        low = np.maximum(centre - 2 * width, 0)
        high = np.minimum(centre + 2 * width, z[:, 2:])
    return best
