"""The 2:4 regularizer and its proximal operator.

For a group ``w`` of four weights the regularizer is the sum of the absolute products of
three of its entries (the third elementary symmetric polynomial of ``|w|``):

    R(w) = |w1 w2 w3| + |w1 w2 w4| + |w1 w3 w4| + |w2 w3 w4|,

which is zero exactly when at most two entries are non-zero. Its proximal operator,

    prox_{lam R}(z) = argmin_w  1/2 ||w - z||^2 + lam R(w),

keeps the signs of ``z`` and the order of ``|z|``, so it is solved on the sorted magnitudes
``z1 >= z2 >= z3 >= z4 >= 0`` (the paper's "prox with decreasing non-negative input")
by comparing the best point of each support: the two largest entries, which cost
``(z3^2 + z4^2) / 2``; the three largest; and all four. The last two are found by exact
coordinate minimization (each coordinate is a soft threshold), run until it stops moving.
Groups whose answer is provably the two largest entries skip the sweeps (the early exit of
:func:`two_entries_certified`).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import minimize

from reprobook.checks import check_real
from reprobook.sparse.structure import check_weight

#: Coordinate-descent sweeps run between two convergence checks.
SWEEPS_PER_CHECK = 8


def e3(w: torch.Tensor) -> torch.Tensor:
    """The third elementary symmetric polynomial of the last axis (of length 4)."""
    a, b, c, d = w.unbind(-1)
    return a * b * (c + d) + c * d * (a + b)


def regularizer(weight: torch.Tensor) -> torch.Tensor:
    """R(W): the sum over all 2:4 groups of the absolute products of three of their entries."""
    check_weight("weight", weight)
    return e3(weight.abs().view(weight.shape[0], -1, 4)).sum()


def prox_objective(w: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    """1/2 ||w - z||^2 + lam R(w) of every group (last axis of length 4)."""
    return 0.5 * ((w - z) ** 2).sum(-1) + lam * e3(w.abs())


def _sweep(w: list[torch.Tensor], z: torch.Tensor, lam: float) -> None:
    """One coordinate-minimization sweep in place, last coordinate of the support first.

    ``w`` holds one tensor per coordinate of the support (each over all groups).
    Coordinate k minimizes 1/2 (w_k - z_k)^2 + lam w_k e2(others), whose minimizer on
    w_k >= 0 is max(z_k - lam e2(others), 0).
    """
    support = len(w)
    for k in reversed(range(support)):
        others = [w[j] for j in range(support) if j != k]
        if support == 3:
            e2 = others[0] * others[1]
        else:
            e2 = others[0] * (others[1] + others[2]) + others[1] * others[2]
        w[k] = torch.clamp(z[k] - lam * e2, min=0)


def _coordinate_minimum(z: torch.Tensor, lam: float, support: int, tolerance: float, max_sweeps: int) -> torch.Tensor:
    """Minimize over w >= 0 supported on the first ``support`` entries, every group from w = 0.

    ``z`` has shape (4, G): one row per coordinate, so that each coordinate is contiguous.
    Groups that have stopped moving (largest change below ``tolerance`` times their
    largest entry, or a few rounding errors of the dtype) leave the computation, so the
    cost follows the slowest groups only.
    """
    w = torch.zeros_like(z)
    active = torch.arange(z.shape[1], device=z.device)
    sweeps = 0
    while active.numel() and sweeps < max_sweeps:
        zz = z[:support, active]
        ww = list(w[:support, active])
        for _ in range(SWEEPS_PER_CHECK):
            previous = torch.stack(ww)
            _sweep(ww, zz, lam)
        sweeps += SWEEPS_PER_CHECK
        current = torch.stack(ww)
        w[:support, active] = current
        moving = (current - previous).abs().amax(0) > max(tolerance, 4 * torch.finfo(z.dtype).eps) * zz[0]
        active = active[moving]
    return w.T


def prox_sorted(z: torch.Tensor, lam: float, tolerance: float = 1e-13, max_sweeps: int = 10_000) -> torch.Tensor:
    """The prox of sorted non-negative groups ``z`` (shape (G, 4), each row decreasing)."""
    two = z.clone()
    two[:, 2:] = 0
    best, value = two, 0.5 * (z[:, 2] ** 2 + z[:, 3] ** 2)
    columns = z.T.contiguous()
    for support in (3, 4):
        candidate = _coordinate_minimum(columns, lam, support, tolerance, max_sweeps)
        candidate_value = prox_objective(candidate, z, lam)
        better = candidate_value < value  # strict: equal values keep the sparser point
        best = torch.where(better[:, None], candidate, best)
        value = torch.where(better, candidate_value, value)
    return best


def two_entries_certified(magnitudes: torch.Tensor, lam: float) -> torch.Tensor:
    """Which sorted groups provably have the answer (z1, z2, 0, 0): the early exit.

    True when z3 <= lam z1 z2 / 2 and (z3 <= z2 / sqrt(2) or 2 lam z1 z3 <= z2); this includes
    every group that is already 2:4 (z3 = 0). Proof: for any w >= 0, R(w) >= w1 w2 (w3 + w4)
    and the w3, w4 terms of the objective exceed those of (z1, z2, 0, 0) by at least
    t^2/4 - z3 t, with t = w3 + w4. Minimizing over (w1, w2) leaves m(lam t) + t^2/4 - z3 t,
    where m(c), the least value of 1/2 (w1 - z1)^2 + 1/2 (w2 - z2)^2 + c w1 w2, is concave in c,
    zero at 0 and equal to z2^2/2 from c0 = z2/z1 on, hence m(c) >= c z1 z2 / 2 below c0. The
    two conditions make the remainder non-negative below and above c0. (The tempting rule
    z3 <= lam z1 z2, without the factor 1/2, is wrong for some groups.)
    """
    z1, z2, z3 = magnitudes[:, 0], magnitudes[:, 1], magnitudes[:, 2]
    return (z3 <= 0.5 * lam * z1 * z2) & ((z3 * 2 ** 0.5 <= z2) | (2 * lam * z1 * z3 <= z2))


def prox_24(weight: torch.Tensor, lam: float, tolerance: float = 1e-13, max_sweeps: int = 10_000) -> torch.Tensor:
    """prox_{lam R}(W) for every 2:4 group of a weight at once (the paper's 2:4 proximal operator).

    Groups whose answer is certain, the two largest entries (see
    :func:`two_entries_certified`, which covers groups that are already 2:4), take it
    without any iteration; the others compare the three candidates of :func:`prox_sorted`.
    Half-precision weights are computed in float32 and returned in their dtype.
    """
    check_weight("weight", weight)
    lam = check_real("lam", lam, 0.0)
    if lam == 0:
        return weight.clone()
    work_dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    z = weight.reshape(-1, 4).to(work_dtype)
    magnitudes, order = torch.sort(z.abs(), dim=-1, descending=True, stable=True)
    answer = z.scatter(-1, order[:, 2:], 0.0)  # the two largest entries of every group
    todo = torch.nonzero(~two_entries_certified(magnitudes, lam)).flatten()
    if todo.numel():
        solved = prox_sorted(magnitudes[todo], lam, tolerance, max_sweeps)
        unsorted = torch.empty_like(solved).scatter_(-1, order[todo], solved)
        answer[todo] = unsorted * torch.sign(z[todo])
    return answer.to(weight.dtype).view_as(weight)


def prox_group(z: list[float], lam: float, tolerance: float = 1e-13, max_sweeps: int = 10_000) -> list[float]:
    """The same operator for one group, in plain Python: the readable reference of :func:`prox_24`."""
    magnitudes = sorted(range(4), key=lambda i: -abs(z[i]))
    s = [abs(z[i]) for i in magnitudes]
    if s[2] == 0 or lam == 0:
        return list(z)

    def objective(w):
        return 0.5 * sum((wi - si) ** 2 for wi, si in zip(w, s)) + lam * (
            w[0] * w[1] * w[2] + w[0] * w[1] * w[3] + w[0] * w[2] * w[3] + w[1] * w[2] * w[3])

    best = [s[0], s[1], 0.0, 0.0]
    best_value = objective(best)
    for support in (3, 4):
        w = [0.0] * 4
        for _ in range(max_sweeps):
            change = 0.0
            for k in reversed(range(support)):
                others = [w[j] for j in range(support) if j != k]
                e2 = sum(others[i] * others[j] for i in range(len(others)) for j in range(i + 1, len(others)))
                new = max(s[k] - lam * e2, 0.0)
                change, w[k] = max(change, abs(new - w[k])), new
            if change <= tolerance * s[0]:
                break
        if objective(w) < best_value:
            best, best_value = w, objective(w)
    result = [0.0] * 4
    for position, value in zip(magnitudes, best):
        result[position] = value if z[position] >= 0 else -value
    return result


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
