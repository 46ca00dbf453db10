"""Independent checks of the 2:4 proximal operator, and groups built to break it.

Three ways to find the least value of 1/2 ||w - z||^2 + lam R(w) that share no code and no
candidate structure with :func:`reprobook.sparse.prox.prox_24`:

* :func:`prox_value_brute_force`: bounded local searches on every one of the 16 supports in
  the original coordinates, assuming nothing (slow: a fraction of a second per group);
* :func:`prox_value_newton`: the same kind of local searches, by Newton's method, on all
  groups, supports and starts at once, exact to rounding error (about 10^4 groups a second);
* :func:`prox_value_grid`: a refined grid search over the two smallest entries of the
  answer with the two largest solved exactly (10^5 groups in seconds), whose value stays
  above the minimum by its grid's spacing where the answer has three or four non-zeros
  (typically 10^-8 of ||z||^2, up to 3 10^-5 on :func:`near_tie_groups`).

:func:`near_tie_groups` draws the groups where a solver is most likely to go wrong: exact and
near ties between neighbouring magnitudes.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import minimize

#: How often :func:`prox_value_newton` halves a step that increases the objective before it gives up.
HALVINGS = 60


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


def _e3(v: np.ndarray) -> np.ndarray:
    """The third elementary symmetric polynomial of the last axis (of length 4)."""
    a, b, c, d = np.moveaxis(v, -1, 0)
    return a * b * (c + d) + c * d * (a + b)


def _e3_gradient(v: np.ndarray) -> np.ndarray:
    """The gradient of :func:`_e3`: for each entry, the sum of the products of two of the other three."""
    a, b, c, d = np.moveaxis(v, -1, 0)
    return np.stack([b * (c + d) + c * d, a * (c + d) + c * d, a * (b + d) + b * d, a * (b + c) + b * c], -1)


def _value(v: np.ndarray, target: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """g(v) = 1/2 ||v - target||^2 + lam e3(v) of every row."""
    return 0.5 * ((v - target) ** 2).sum(-1) + lams * _e3(v)


def prox_value_newton(z, lam, starts: int = 4, iterations: int = 100, seed: int = 0) -> np.ndarray:
    """The least prox objective of each group found by Newton's method on every support: a batched brute force.

    Turning an entry of w to the sign of z's keeps R(w) and brings w closer to z, so the least
    value is that of g(v) = 1/2 ||v - |z|||^2 + lam e3(v) over v >= 0. On the eleven supports of
    at most two entries e3 vanishes and the best point is |z| there. On each of the five others,
    as in :func:`prox_value_brute_force`, local searches from |z| restricted to the support and
    from ``starts - 1`` random points below it (alternately |z| times one random factor and
    times a random factor per entry): Newton steps (gradient steps where the Hessian gives no
    descent direction), halved until g does not increase and projected onto v >= 0, until g
    stops falling. All groups, supports and starts go at once. It shares no code and no
    candidate structure with :func:`prox_24` (no sorting, no closed forms, no coordinate
    sweeps) and ends at its local minima to rounding error, where :func:`prox_value_grid`
    stops at its grid's spacing. ``lam`` is a number or one per group. Returns the values,
    shape (G,).
    """
    a = np.abs(np.asarray(z, dtype=np.float64).reshape(-1, 4))
    every = np.array(list(itertools.product([0.0, 1.0], repeat=4)))
    small, supports = every[every.sum(1) <= 2], every[every.sum(1) >= 3]
    best = 0.5 * (a**2 @ (1 - small).T).min(1)
    shape = (starts, len(supports), len(a))
    rng = np.random.default_rng(seed)
    fractions = rng.uniform(0, 1.2, (*shape, 4))
    fractions[1::2] = rng.uniform(0, 1.2, (*fractions[1::2].shape[:3], 1))
    fractions[0] = 1.0
    face = np.broadcast_to(np.arange(len(supports))[:, None], shape).reshape(-1)
    target = np.broadcast_to(a, (*shape, 4)).reshape(-1, 4)
    lams = np.broadcast_to(np.broadcast_to(np.asarray(lam, dtype=np.float64), len(a)), shape).reshape(-1)
    v = target * supports[face] * fractions.reshape(-1, 4)
    value = _value(v, target, lams)
    eye = np.eye(4)
    couplings = supports[:, :, None] * supports[:, None, :] * (1 - eye)  # the Hessian's off-diagonal, per support
    active = np.arange(len(v))
    for _ in range(iterations):
        w, t, lt = v[active], target[active], lams[active]
        gradient = (w - t + lt[:, None] * _e3_gradient(w)) * supports[face[active]]
        pair_sums = w.sum(-1)[:, None, None] - w[:, :, None] - w[:, None, :]  # the second derivatives of e3
        hessian = eye + lt[:, None, None] * pair_sums * couplings[face[active]]  # identity off the support
        step, info = torch.linalg.solve_ex(torch.from_numpy(hessian), torch.from_numpy(-gradient))
        step = step.numpy()
        uphill = (info.numpy() != 0) | ~((step * gradient).sum(-1) < 0)
        step[uphill] = -gradient[uphill]
        before = value[active]
        pending = np.arange(len(active))
        for _ in range(HALVINGS):  # halve the steps until g does not increase
            trial = np.maximum(w[pending] + step[pending], 0)
            trial_value = _value(trial, t[pending], lt[pending])
            accepted = trial_value <= before[pending]
            v[active[pending[accepted]]], value[active[pending[accepted]]] = trial[accepted], trial_value[accepted]
            pending = pending[~accepted]
            if not pending.size:
                break
            step[pending] /= 2
        active = active[value[active] < before]
        if not active.size:
            break
    return np.minimum(best, value.reshape(-1, len(a)).min(0))


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
