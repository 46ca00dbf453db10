"""The 2:4 regularizer and its proximal operator.

For a group ``w`` of four weights the regularizer is the sum of the absolute products of
three of its entries (the third elementary symmetric polynomial of ``|w|``):

    R(w) = |w1 w2 w3| + |w1 w2 w4| + |w1 w3 w4| + |w2 w3 w4|,

which is zero exactly when at most two entries are non-zero. Its proximal operator,

    prox_{lam R}(z) = argmin_w  1/2 ||w - z||^2 + lam R(w),

keeps the signs of ``z`` and the order of ``|z|`` (R is symmetric and sign-blind), so it
is solved on the sorted magnitudes ``z1 >= z2 >= z3 >= z4 >= 0`` (the paper's "prox with
decreasing non-negative input"), where the answer is supported on the two, three or four
largest entries. The best point of each of these supports is a candidate; the prox is the
best candidate.

* **Two entries:** (z1, z2, 0, 0), of value (z3^2 + z4^2) / 2.
* **Three entries, exactly** (:func:`three_entries`). For a fixed w3 = t the rest is the
  convex quadratic 1/2 (w1 - z1)^2 + 1/2 (w2 - z2)^2 + c w1 w2 with c = lam t, solved in
  closed form: w1 = (z1 - c z2) / (1 - c^2), w2 = (z2 - c z1) / (1 - c^2) while c < z2/z1,
  and (z1, 0) beyond. What is left is a function of one variable whose derivative,
  lam w1 w2 + t - z3, vanishes where the quintic

      c^5 - lam z3 c^4 - 2 c^3 + (2 lam z3 + lam^2 z1 z2) c^2
          + (1 - lam^2 (z1^2 + z2^2)) c + lam^2 z1 z2 - lam z3 = 0

  does. Comparing its real roots in [0, min(lam z3, z2/z1)] with the two ends of that
  interval gives the global minimum over the support, with no starting point to get wrong.
* **Four entries:** exact coordinate minimization (each coordinate is a soft threshold,
  w_k = max(z_k - lam e2(others), 0)), run until it stops moving, from three starts:
  w = 0, w = z, and the stationary point of four equal entries (:func:`symmetric_start`).
  Each start finds groups the others miss: when the four entries nearly tie, the sweeps
  from w = 0 and from w = z fall to a three-entry point and only the third finds the
  interior minimum. A start that ends with a zero entry only finds a point of a smaller support,
  which the exact candidates above already dominate, so a start whose smallest entry is 0
  after 16 sweeps stops there (of 1.4 million such runs on Gaussian groups at lam = 0.3, 1
  and 3, none that was at 0 after 16 sweeps ended inside the support), and a larger
  support must beat a smaller one strictly. This candidate has no proof; the tests compare
  the operator with an independent batched Newton search on every support
  (:func:`prox_value_newton`) on 10^5 adversarial groups.

Three proved shortcuts skip work: groups whose answer is provably the two largest entries
take it at once (:func:`two_entries_certified`); groups whose objective is convex where the
answer lies (small lambda, :func:`convex_groups`) take the coordinate sweeps from w = 0,
which find its one minimizer in any order of the entries, unsorted; and groups that cannot
have a minimizer with four non-zeros (large lambda, :func:`four_entries_possible`) skip the
sweeps over four entries. An
earlier version minimized the three-entry support by coordinate descent from w = 0 too; it
stalled when z2 and z3 nearly tie (for z = (0.676, 0.663, 0.663, 0.074) and lam = 1.5625
it returned a value 6% above the minimum), which the closed form above rules out.
"""

from __future__ import annotations

import numpy as np
import torch

from reprobook.checks import check_real
from reprobook.sparse.structure import check_weight

#: Coordinate-descent sweeps between two convergence checks, until SHORT_CHECKS_UNTIL sweeps;
#: then each check waits as many sweeps as were run, up to the maximum (the groups still
#: moving are few, and a check costs more than a sweep of them). The schedule is the same for
#: every group, so a group's answer does not depend on the groups computed with it.
SWEEPS_PER_CHECK = 4
SHORT_CHECKS_UNTIL = 32
MAX_SWEEPS_PER_CHECK = 64
#: Sweeps after which a four-entry run whose smallest entry is 0 stops (see :func:`_coordinate_minimum`).
BOUNDARY_SWEEPS = 16
#: Where the three-entry quintic is sampled to bracket its roots, and the bisections of a bracket.
ROOT_SAMPLES = 24
BISECTIONS = 8
#: Groups solved together: larger weights are split so that the temporaries stay in the memory caches.
CHUNK_GROUPS = 1 << 16


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


#: Each coordinate of a sweep, the last first, with the three others.
SWEEP_ORDER = tuple((k, tuple(j for j in range(4) if j != k)) for k in (3, 2, 1, 0))


def _sweep(w: tuple[torch.Tensor, ...], z: tuple[torch.Tensor, ...], lam: float) -> None:
    """One coordinate-minimization sweep over the four coordinates in place, the last first.

    ``w`` and ``z`` hold one row per coordinate (views of (4, G) tensors, taken once per
    call of :func:`_coordinate_minimum`: the few groups that converge slowly are swept
    hundreds of times, where the cost of each operation's call dominates). Coordinate k
    minimizes 1/2 (w_k - z_k)^2 + lam w_k e2(others), whose minimizer on w_k >= 0 is
    max(z_k - lam e2(others), 0).
    """
    for k, others in SWEEP_ORDER:
        a, b, c = (w[j] for j in others)
        e2 = (b + c).mul_(a).add_(b * c)  # in place: fewer temporaries
        torch.sub(z[k], e2.mul_(lam), out=w[k]).clamp_(min=0)


def _coordinate_minimum(
    z: torch.Tensor, lam: float, start: torch.Tensor, tolerance: float, max_sweeps: int, interior_only: bool = False
) -> torch.Tensor:
    """Minimize over w >= 0 supported on all four entries by coordinate sweeps from ``start``.

    ``z`` and ``start`` have shape (4, G): one row per coordinate, so that each coordinate
    is contiguous. Groups that have stopped moving (largest change below ``tolerance``
    times their largest entry, or a few rounding errors of the dtype) leave the
    computation: each keeps its iterate of the check where it stopped, and the working arrays
    shrink to the groups still moving once those are the minority (taking groups out costs
    more than sweeping them on), so the cost follows the slowest groups only. With ``interior_only``
    (sorted groups, looking for a minimizer with four non-zeros), a group whose smallest
    entry is 0 after ``BOUNDARY_SWEEPS`` sweeps leaves too: it is heading to a point of a
    smaller support, which the exact candidates already cover. Returns shape (G, 4).
    """
    current = start.clone()  # the working iterate of the groups still in the computation
    answer, index = None, None  # filled once some groups leave: index maps working to all groups
    zz = z
    limit = max(tolerance, 4 * torch.finfo(z.dtype).eps) * z.amax(0)
    running = torch.ones_like(limit, dtype=torch.bool)
    sweeps = 0
    while sweeps < max_sweeps:
        per_check = SWEEPS_PER_CHECK if sweeps < SHORT_CHECKS_UNTIL else min(sweeps, MAX_SWEEPS_PER_CHECK)
        rows, z_rows = current.unbind(0), zz.unbind(0)
        for _ in range(per_check - 1):
            _sweep(rows, z_rows, lam)
        previous = current.clone()  # the change of the last sweep decides convergence
        _sweep(rows, z_rows, lam)
        sweeps += per_check
        moving = (current - previous).abs_().amax(0) > limit
        if interior_only and sweeps >= BOUNDARY_SWEEPS:
            moving &= current[3] > 0
        stopped = running & ~moving
        running &= moving
        if answer is None and not running.any():  # every group stopped at this check
            return current.T
        if answer is None:
            answer, index = start.clone(), torch.arange(z.shape[1], device=z.device)
        answer[:, index[stopped]] = current[:, stopped]  # a group's answer: its iterate where it stopped
        if 2 * int(running.sum()) <= running.numel():  # most have stopped: sweep the others only
            keep = torch.nonzero(running).flatten()
            if not keep.numel():
                return answer.T
            index, zz, limit, current = index[keep], zz[:, keep], limit[keep], current[:, keep]
            running = running[keep]
    if answer is None:
        return current.T
    answer[:, index[running]] = current[:, running]
    return answer.T


def symmetric_start(z: torch.Tensor, lam: float) -> torch.Tensor:
    """The stationary point w = m - 3 lam w^2 of four equal entries m = mean(z), for every group.

    The start of the coordinate sweeps that finds the interior minimum when the four
    entries nearly tie, where the sweeps from 0 and from z fall to a three-entry point.
    """
    mean = z.mean(0, keepdim=True)
    return (2 * mean / (1 + torch.sqrt(1 + 12 * lam * mean))).expand_as(z).clone()


def three_entries_stationary_polynomial(z: torch.Tensor, lam: float) -> torch.Tensor:
    """The coefficients (highest first, shape (G, 6)) of the quintic in c = lam w3 of the docstring."""
    z1, z2, z3 = z[:, 0], z[:, 1], z[:, 2]
    one = torch.ones_like(z1)
    return torch.stack(
        [
            one,
            -lam * z3,
            -2 * one,
            2 * lam * z3 + lam**2 * z1 * z2,
            1 - lam**2 * (z1**2 + z2**2),
            lam**2 * z1 * z2 - lam * z3,
        ],
        dim=-1,
    )


def _three_entries_point(z: torch.Tensor, lam: float, c: torch.Tensor) -> torch.Tensor:
    """The best point of each sorted group ``z`` (N, 4) with w3 = c / lam and w4 = 0.

    Closed form in (w1, w2) while c < z2/z1; (z1, 0) beyond.
    """
    z1, z2 = z[:, 0], z[:, 1]
    interior = c < z2 / z1
    denominator = torch.where(interior, 1 - c**2, torch.ones_like(c))
    w1 = torch.where(interior, (z1 - c * z2) / denominator, z1)
    w2 = torch.where(interior, (z2 - c * z1) / denominator, torch.zeros_like(c))
    return torch.stack([w1, w2, c / lam, torch.zeros_like(c)], dim=-1)


def _horner(columns: list[torch.Tensor], c: torch.Tensor) -> torch.Tensor:
    """The polynomials whose coefficients (highest first) are ``columns``, at ``c`` (Horner)."""
    value = torch.zeros_like(c)
    for coefficient in columns:
        value = value * c + coefficient
    return value


def three_entries(z: torch.Tensor, lam: float) -> torch.Tensor:
    """The global minimizer supported on the three largest entries of sorted groups ``z`` (G, 4).

    With w3 = c / lam and c in [0, lam z3]: while c < z2/z1 the objective's slope has the
    sign of the quintic P of the module's docstring, so its local minima are where P
    crosses from negative to positive. P is sampled at ``ROOT_SAMPLES`` points of
    [0, c_max], c_max = min(lam z3, z2/z1); every crossing between two samples is found
    by bisection, then Newton steps kept inside the bracket. The candidates are these
    minima and both ends of [0, c_max]; beyond z2/z1 (where w2 = 0) the objective only
    falls as c grows, so its candidate is c = lam z3. The best candidate is returned.
    (Two crossings closer together than the samples' spacing would hide a local
    minimum no deeper than the area under that short dip of the slope; the tests
    compare the operator with an independent Newton search on 10^5 adversarial groups.)
    Needs z1 > 0 and lam > 0.
    """
    groups = torch.arange(z.shape[0], device=z.device)
    coefficients = three_entries_stationary_polynomial(z, lam)
    c_end = lam * z[:, 2]
    c_max = torch.minimum(c_end, z[:, 1] / z[:, 0])
    fractions = torch.linspace(0, 1, ROOT_SAMPLES, dtype=z.dtype, device=z.device)
    samples = c_max[:, None] * fractions
    values = _horner([column[:, None] for column in coefficients.T.contiguous()], samples)
    group, left = torch.nonzero((values[:, :-1] < 0) & (values[:, 1:] >= 0), as_tuple=True)
    low, high = samples[group, left], samples[group, left + 1]
    columns = list(coefficients[group].T.contiguous())
    slope_columns = [k * column for k, column in zip(range(5, 0, -1), columns)]
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        negative = _horner(columns, middle) < 0
        low, high = torch.where(negative, middle, low), torch.where(negative, high, middle)
    root = (low + high) / 2
    for _ in range(3):  # Newton, kept inside the bracket
        slope = _horner(slope_columns, root)
        step = root - _horner(columns, root) / torch.where(slope > 0, slope, 1)
        root = torch.where((slope > 0) & (step >= low) & (step <= high), step, root)
    ends = torch.stack([torch.zeros_like(c_max), c_max, c_end], dim=1)
    owner = torch.cat([groups.repeat_interleave(3), group])
    points = _three_entries_point(z[owner], lam, torch.cat([ends.flatten(), root]))
    objective = prox_objective(points, z[owner], lam)
    best = torch.full_like(c_max, torch.inf).scatter_reduce(0, owner, objective, "amin")
    chosen = torch.empty_like(groups)
    winners = torch.nonzero(objective == best[owner]).flatten().flip(0)  # the first candidate wins ties
    chosen[owner[winners]] = winners
    return points[chosen]


def three_entries_lower_bound(z: torch.Tensor, lam: float) -> torch.Tensor:
    """A lower bound on the objective of every point supported on the three largest entries.

    With w3 = t, the best (w1, w2) cost m(lam t), a concave function of c = lam t that is
    0 at c = 0 and z2^2/2 from c = z2/z1 on (see :func:`two_entries_certified`), so
    m(lam t) >= b t with b = lam z1 z2 / 2 up to z2/z1, and beyond it the point is no better
    than the two largest entries. Hence the objective is at least
    min_t b t + (t - z3)^2 / 2 + z4^2 / 2, that is z4^2/2 + b z3 - b^2/2 when z3 > b, and
    (z3^2 + z4^2)/2, the two-entry value, otherwise.
    """
    b = 0.5 * lam * z[:, 0] * z[:, 1]
    z3, z4 = z[:, 2], z[:, 3]
    return 0.5 * z4**2 + torch.where(z3 > b, b * z3 - 0.5 * b**2, 0.5 * z3**2)


def convex_groups(z: torch.Tensor, lam: float) -> torch.Tensor:
    """Which groups of magnitudes ``z`` (G, 4) have a strictly convex prox objective where their answer lies.

    True when lam s < 1 and 2 lam ||z|| < 1, with s = z1 + z2 + z3 + z4 (any order of the
    entries). Proof: the answer lies in the box 0 <= w <= z (each coordinate's best value is
    max(z_k - lam e2(others), 0) <= z_k). There the Hessian of the objective is I + lam M,
    where M_ij (i != j) is the sum of the two entries of w other than i and j, and M_ii = 0:
    M = (s_w 11^T - w 1^T - 1 w^T) + (2 diag(w) - s_w I), with s_w the sum of w. The first
    part has rank two and eigenvalues s_w + 2 ||w||, s_w - 2 ||w|| and 0 (on span{1, w}: in
    that basis it is [[3 s_w, s_w^2 - ||w||^2], [-4, -s_w]]); the second is at least -s_w I.
    By Weyl's inequality M's smallest eigenvalue is at least -max(s_w, 2 ||w||), and on the
    box -max(s, 2 ||z||), so the Hessian is positive definite. (This is sharper than
    Gershgorin's 2 lam (z1 + z2 + z3) < 1 for sorted z: for four equal entries m it admits
    lam m < 1/4 against 1/6.) A strictly convex objective has one minimizer, which exact
    coordinate minimization from any start converges to.
    """
    a, b, c, d = z.unbind(-1)  # written out: the same rounding on every CPU
    total = ((a + b) + c) + d
    squares = ((a * a + b * b) + c * c) + d * d
    return (lam * total < 1) & (4 * lam**2 * squares < 1)


def prox_sorted(z: torch.Tensor, lam: float, tolerance: float = 1e-13, max_sweeps: int = 10_000) -> torch.Tensor:
    """The prox of sorted non-negative groups ``z`` (shape (G, 4), each row decreasing, z1 > 0).

    Groups whose objective is convex (:func:`convex_groups`, the small-lambda regime where
    a pruning run spends its first iterations) take the coordinate sweeps from w = 0;
    the others the best of the candidates of the module's docstring.
    """
    return _solve_by_rows(z, convex_groups(z, lam), _convex_minimum, _best_candidate, lam, tolerance, max_sweeps)


def _solve_by_rows(z: torch.Tensor, chosen: torch.Tensor, solve_chosen, solve_others, *arguments) -> torch.Tensor:
    """``solve_chosen`` on the rows of ``z`` where ``chosen`` is true, ``solve_others`` on the rest."""
    if chosen.all():
        return solve_chosen(z, *arguments)
    result = torch.empty_like(z)
    for rows, solve in ((chosen, solve_chosen), (~chosen, solve_others)):
        rows = torch.nonzero(rows).flatten()
        if rows.numel():
            result[rows] = solve(z[rows], *arguments)
    return result


def _convex_minimum(z: torch.Tensor, lam: float, tolerance: float, max_sweeps: int) -> torch.Tensor:
    """The one minimizer of convex groups: coordinate sweeps from w = 0."""
    columns = z.T.contiguous()
    return _coordinate_minimum(columns, lam, columns * 0, tolerance, max_sweeps)


def _best_candidate(z: torch.Tensor, lam: float, tolerance: float, max_sweeps: int) -> torch.Tensor:
    """The best of the two-, three- and four-entry candidates of the module's docstring.

    The candidates are compared in the order of their support's size, and a larger support
    must be strictly better: a four-entry run that creeps towards a point with a zero entry
    does not displace the exact three-entry point it approaches. The exact three-entry
    candidate is computed only where it can win, where the two-entry value exceeds the lower
    bound :func:`three_entries_lower_bound`.
    """
    best = z.clone()
    best[:, 2:] = 0
    value = 0.5 * (z[:, 2] ** 2 + z[:, 3] ** 2)

    def keep_better(rows: torch.Tensor, candidate: torch.Tensor) -> None:
        candidate_value = prox_objective(candidate, z[rows], lam)
        better = candidate_value < value[rows]  # strict: equal values keep the sparser point
        best[rows] = torch.where(better[:, None], candidate, best[rows])
        value[rows] = torch.where(better, candidate_value, value[rows])

    rows = torch.nonzero(value > three_entries_lower_bound(z, lam)).flatten()
    if rows.numel():
        keep_better(rows, three_entries(z[rows], lam))
    rows = torch.nonzero(four_entries_possible(z, lam)).flatten()
    if not rows.numel():
        return best
    columns = z[rows].T.contiguous()
    starts = torch.cat([columns * 0, columns, symmetric_start(columns, lam)], dim=1)
    four = _coordinate_minimum(columns.repeat(1, 3), lam, starts, tolerance, max_sweeps, interior_only=True)
    four = four.view(3, rows.numel(), 4)
    # the best of the three starts that ended inside the support (one with a zero entry found a
    # point of a smaller support, unconverged if it left early: the exact candidates cover those)
    four_value, start = torch.where(four[..., 3] > 0, prox_objective(four, z[rows], lam), torch.inf).min(0)
    inside = torch.nonzero(four_value < torch.inf).flatten()
    if inside.numel():
        keep_better(rows[inside], four[start[inside], inside])
    return best


def four_entries_possible(z: torch.Tensor, lam: float) -> torch.Tensor:
    """Which sorted groups may have a minimizer with four non-zero entries: lam z1 <= 5/4.

    Proof: such a minimizer is a local minimum inside the orthant, so the Hessian I + lam M
    (M_ij the sum of the two entries other than i and j) is positive semi-definite there,
    and its 2 x 2 principal minors give lam (w_k + w_l) <= 1 for every pair. With u = lam w,
    the first coordinate's stationarity reads lam z1 = u1 + u2 u3 + u2 u4 + u3 u4. Let
    m = u2 be the largest of u2, u3, u4; then u1 <= 1 - m. If m <= 1/2 the value is at most
    1 - m + 3 m^2 <= 5/4 (convex in m, checked at both ends); if m > 1/2, then u3, u4 <= 1 - m
    and it is at most (1 - m)(2 + m) < 5/4. Beyond, the coordinate sweeps over four entries
    could only end at a point of a smaller support, which the exact candidates cover.
    """
    return lam * z[:, 0] <= 1.25


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
    return (z3 <= 0.5 * lam * z1 * z2) & ((z3 * 2**0.5 <= z2) | (2 * lam * z1 * z3 <= z2))


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
    groups = weight.reshape(-1, 4)
    answer = torch.empty(groups.shape, dtype=weight.dtype, device=weight.device)
    for start in range(0, groups.shape[0], CHUNK_GROUPS):  # groups are independent: chunks keep temporaries small
        chunk = slice(start, start + CHUNK_GROUPS)
        answer[chunk] = _prox_groups(groups[chunk].to(work_dtype), lam, tolerance, max_sweeps)
    return answer.view_as(weight)


def _prox_groups(z: torch.Tensor, lam: float, tolerance: float, max_sweeps: int) -> torch.Tensor:
    """The prox of every row of ``z`` (shape (G, 4)): the body of :func:`prox_24`.

    A group whose objective is convex (:func:`convex_groups`, which does not need the
    entries sorted) has one minimizer, which coordinate sweeps from 0 find whatever the order
    of its entries: it skips the sorting. The others are sorted first.
    """
    convex = convex_groups(z.abs(), lam)
    return _solve_by_rows(z, convex, _convex_signed, _sorted_prox_groups, lam, tolerance, max_sweeps)


def _convex_signed(z: torch.Tensor, lam: float, tolerance: float, max_sweeps: int) -> torch.Tensor:
    """The prox of groups whose objective is convex, in their own order (no sorting)."""
    return _convex_minimum(z.abs(), lam, tolerance, max_sweeps) * torch.sign(z)


def _sorted_prox_groups(z: torch.Tensor, lam: float, tolerance: float, max_sweeps: int) -> torch.Tensor:
    """The prox of groups solved on their sorted magnitudes: the certified two largest, or :func:`prox_sorted`."""
    magnitudes, order = torch.sort(z.abs(), dim=-1, descending=True, stable=True)
    answer = z.scatter(-1, order[:, 2:], 0.0)  # the two largest entries of every group
    todo = torch.nonzero(~two_entries_certified(magnitudes, lam)).flatten()
    if todo.numel():
        solved = prox_sorted(magnitudes[todo], lam, tolerance, max_sweeps)
        unsorted = torch.empty_like(solved).scatter_(-1, order[todo], solved)
        answer[todo] = unsorted * torch.sign(z[todo])
    return answer


def prox_group(z: list[float], lam: float, tolerance: float = 1e-13, max_sweeps: int = 10_000) -> list[float]:
    """The same operator for one group, in plain Python: the readable reference of :func:`prox_24`."""
    order = sorted(range(4), key=lambda i: -abs(z[i]))
    s = [abs(z[i]) for i in order]
    if s[2] == 0 or lam == 0:
        return list(z)

    def objective(w):
        e3 = w[0] * w[1] * (w[2] + w[3]) + w[2] * w[3] * (w[0] + w[1])
        return 0.5 * sum((wi - si) ** 2 for wi, si in zip(w, s)) + lam * e3

    def sweeps(start):  # exact coordinate minimization until nothing moves
        w = list(start)
        for _ in range(max_sweeps):
            change = 0.0
            for k in (3, 2, 1, 0):
                a, b, c = (w[j] for j in range(4) if j != k)
                new = max(s[k] - lam * (a * (b + c) + b * c), 0.0)
                change, w[k] = max(change, abs(new - w[k])), new
            if change <= tolerance * s[0]:
                return w
        return w

    if lam * sum(s) < 1 and 4 * lam**2 * sum(x * x for x in s) < 1:  # a convex objective: its one minimizer
        best = sweeps([0.0] * 4)
    else:
        candidates = [[s[0], s[1], 0.0, 0.0]]
        # three entries: the ends of [0, c_max] and the real roots of the quintic in c = lam w3
        quintic = three_entries_stationary_polynomial(torch.tensor([s], dtype=torch.float64), lam)[0]
        c_max = min(lam * s[2], s[1] / s[0])
        roots = [r.real for r in np.roots(quintic.numpy()) if abs(r.imag) <= 1e-4]
        for c in [0.0, c_max, lam * s[2], *(min(max(r, 0.0), c_max) for r in roots)]:
            interior = c < s[1] / s[0]
            w1, w2 = ((s[0] - c * s[1]) / (1 - c * c), (s[1] - c * s[0]) / (1 - c * c)) if interior else (s[0], 0)
            candidates.append([w1, w2, c / lam, 0.0])
        # four entries: coordinate sweeps from w = 0, from w = z and from the stationary point of a tie
        mean = sum(s) / 4
        for start in ([0.0] * 4, list(s), [2 * mean / (1 + (1 + 12 * lam * mean) ** 0.5)] * 4):
            candidates.append(sweeps(start))
        best = min(candidates, key=objective)  # the first of equal values: the sparser point
    result = [0.0] * 4
    for position, value in zip(order, best):
        result[position] = value if z[position] >= 0 else -value
    return result
