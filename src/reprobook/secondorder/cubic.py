"""The cubic-regularized Newton subproblem.

Convention (one throughout the package): the model of a step s is

    m(s) = gᵀs + ½ sᵀHs + (M/3)‖s‖³,

the form of the Krylov CRN authors' code and of Cartis, Gould and Toint (2011). Nesterov
and Polyak (2006) write the cubic term as (M/6)‖s‖³, so their M is twice the M used here.
:data:`CUBIC_DENOMINATOR` records the 3.

A global minimizer s* of m (H symmetric, possibly indefinite) is characterized by
(Cartis–Gould–Toint 2011, Thm 3.1)

    (H + rI) s* = −g,   r = M‖s*‖,   H + rI ⪰ 0,

so r ≥ max(0, −λ_min(H)). With H = QΛQᵀ and γ = Qᵀg the step is s(r) = −(H + rI)⁻¹g,
‖s(r)‖² = Σ γ_i²/(λ_i + r)², and r solves the secular equation ‖s(r)‖ = r/M. This module
solves it by Newton's method on φ(r) = 1/‖s(r)‖ − M/r (increasing and concave on the
admissible interval, hence Newton is monotone from the left), safeguarded by a bracket
[r_lo, r_hi] with explicit ends:

    r_hi: the positive root of r(λ_min + r) = M‖g‖  (there ‖s(r)‖ ≤ ‖g‖/(λ_min + r) = r/M),
    r_lo: max(0, −λ_min), or the positive root of r(λ_max + r) = M‖g‖ when λ_min ≥ 0.

The iteration runs in t = r − max(0, −λ_min) with the eigenvalues shifted exactly
(λ_i − λ_min), so that ‖s‖ keeps its relative accuracy near the pole r = −λ_min.

**Hard case.** When λ_min < 0 and g has no component in the eigenspace of λ_min, ‖s(r)‖
stays bounded as r ↓ −λ_min. If then ‖s(−λ_min)‖ < −λ_min/M (the pseudo-inverse step),
the solution is r = −λ_min and s = −(H + rI)⁺g + τu with u a unit eigenvector of λ_min
and τ chosen so that ‖s‖ = r/M.

Three entry points share this machinery:

* :class:`CubicSubproblem` for a dense H or a tridiagonal T (the Lanczos matrix): one
  eigendecomposition, then :meth:`CubicSubproblem.solve` for any number of M (the line
  search re-solves with doubled M at O(k) cost per secular evaluation);
* :func:`solve_cubic` and :func:`solve_cubic_tridiagonal`, the one-shot versions;
* :func:`solve_cubic_cg`, matrix-free for large d: conjugate gradients on
  (H + rI)s = −g through Hessian-vector products. It assumes H ⪰ 0 (convex f), so that
  r ∈ (0, √(M‖g‖)] and no hard case arises; an indefinite H is detected by negative
  curvature in CG and raises an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
from scipy.linalg import eigh, eigh_tridiagonal

from reprobook.checks import check_count, check_real, finite_array
from reprobook.secondorder.lanczos import dot, is_tensor, norm, one_blas_thread

#: The cubic term of the model is (M / CUBIC_DENOMINATOR)·‖s‖³ (Nesterov–Polyak use 6).
CUBIC_DENOMINATOR = 3

_MAX_SECULAR_STEPS = 500

# Dense eigendecompositions from this size on run on one BLAS thread (see
# :func:`~reprobook.secondorder.lanczos.one_blas_thread`); one thread costs at most about
# 2× at the sizes full CRN uses (d < 500).
_SINGLE_THREAD_FROM = 64


@dataclass
class CubicSolution:
    """A minimizer of the cubic model.

    Attributes:
        s: the step (numpy for the dense/tridiagonal solvers; the kind of g for CG).
        r: the shift of the secular equation, r = M‖s‖ (to rounding), with (H + rI)s = −g.
        model_value: m(s) ≤ 0.
        hard_case: whether the hard case occurred.
        iterations: the number of secular-equation (Newton or bisection) steps.
        hvps: Hessian-vector products used (matrix-free solver only, else 0).
    """

    s: Any
    r: float
    model_value: float
    hard_case: bool = False
    iterations: int = 0
    hvps: int = 0

    @property
    def model_decrease(self):
        """−m(s) ≥ 0, the decrease the model predicts."""
        return -self.model_value

    @property
    def step_norm(self):
        """‖s‖."""
        return norm(self.s)


def cubic_model(g, H, M, s):
    """m(s) = gᵀs + ½ sᵀHs + (M/3)‖s‖³ for a dense or sparse H (numpy)."""
    g = np.asarray(g, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    return float(g @ s + 0.5 * s @ (H @ s) + M / CUBIC_DENOMINATOR * np.linalg.norm(s) ** 3)


def _positive_root(lam, c):
    """The positive root of r² + λr − c = 0 (c > 0), without cancellation."""
    disc = math.sqrt(lam * lam + 4.0 * c)
    if lam >= 0.0:
        return 2.0 * c / (lam + disc)
    return 0.5 * (disc - lam)


def _check_M(M):
    return check_real("M", M, 0.0, open_lower=True)


class CubicSubproblem:
    """The cubic model of (g, H) with H given through an eigendecomposition H = QΛQᵀ.

    Build it with :meth:`from_dense` or :meth:`from_tridiagonal`; :meth:`solve` returns
    the global minimizer for a given M.
    """

    #: eigenvalues within this fraction of max|λ| of λ_min count as λ_min (hard case).
    cluster_tol = 1e-10
    #: g counts as orthogonal to the λ_min eigenspace below this fraction of ‖g‖.
    hard_case_tol = 1e-12

    def __init__(self, eigenvalues, eigenvectors, g):
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        self.eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
        self.g = np.asarray(g, dtype=np.float64)
        self.gamma = self.eigenvectors.T @ self.g

    @classmethod
    def from_dense(cls, g, H):
        """The model of g and a symmetric H (a dense array or a scipy sparse matrix)."""
        if scipy.sparse.issparse(H):
            H = H.toarray()
        H = finite_array("H", H)
        if H.ndim != 2 or H.shape[0] != H.shape[1]:
            raise ValueError(f"H must be a square matrix, got shape {H.shape}")
        g = finite_array("g", g, (H.shape[0],))
        H = 0.5 * (H + H.T)
        if H.shape[0] < _SINGLE_THREAD_FROM:
            lam, Q = eigh(H)
        else:
            with one_blas_thread():
                lam, Q = eigh(H)
        return cls(lam, Q, g)

    @classmethod
    def from_tridiagonal(cls, g, alpha, beta):
        """The model of g and T = tridiag(β, α, β) (e.g. from :func:`~reprobook.secondorder.lanczos.lanczos`)."""
        alpha = finite_array("alpha", alpha)
        if alpha.ndim != 1 or alpha.size < 1:
            raise ValueError(f"alpha must be a non-empty 1-D array, got shape {alpha.shape}")
        beta = finite_array("beta", beta, (alpha.size - 1,))
        g = finite_array("g", g, alpha.shape)
        if alpha.size == 1:
            return cls(alpha.copy(), np.ones((1, 1)), g)
        lam, Q = eigh_tridiagonal(alpha, beta)
        return cls(lam, Q, g)

    def _model_in_eigenbasis(self, c, M):
        return float(self.gamma @ c + 0.5 * (self.eigenvalues * c) @ c + M / CUBIC_DENOMINATOR * np.linalg.norm(c) ** 3)

    def _solution(self, c, r, M, hard_case, iterations):
        s = self.eigenvectors @ c
        return CubicSolution(
            s=s, r=float(r), model_value=self._model_in_eigenbasis(c, M), hard_case=hard_case, iterations=iterations
        )

    def solve(self, M, r0=None):
        """The global minimizer of m(s) = gᵀs + ½sᵀHs + (M/3)‖s‖³ (a :class:`CubicSolution`).

        ``r0`` optionally warm-starts the secular equation (e.g. the previous r of a line search).
        """
        M = _check_M(M)
        lam, gamma = self.eigenvalues, self.gamma
        gnorm = float(np.linalg.norm(gamma))
        lam_min, lam_max = float(lam[0]), float(lam[-1])
        scale = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
        if gnorm == 0.0 and lam_min >= 0.0:
            return self._solution(np.zeros_like(gamma), 0.0, M, False, 0)
        r_floor = max(0.0, -lam_min)

        if lam_min < 0.0:
            cluster = lam <= lam_min + self.cluster_tol * scale
            if np.linalg.norm(gamma[cluster]) <= self.hard_case_tol * gnorm or gnorm == 0.0:
                c = np.zeros_like(gamma)
                rest = ~cluster
                c[rest] = -gamma[rest] / (lam[rest] - lam_min)
                radius = r_floor / M
                c_norm = float(np.linalg.norm(c))
                if c_norm <= radius:
                    first = int(np.flatnonzero(cluster)[0])
                    sign = -1.0 if gamma[first] > 0 else 1.0
                    c[first] = sign * math.sqrt(max(radius * radius - c_norm * c_norm, 0.0))
                    return self._solution(c, r_floor, M, True, 0)

        # Newton in t = r − r_floor, with the shifted eigenvalues λ_i + r_floor computed as
        # λ_i − λ_min when λ_min < 0: near the pole (the nearly hard case) ‖s‖ then keeps its
        # full relative accuracy.
        base = lam - lam_min if lam_min < 0.0 else lam
        c_scale = M * gnorm
        hi = _positive_root(abs(lam_min), c_scale)  # r(λ_min + r) = M‖g‖, written in t
        # the lower end r(λ_max + r) = M‖g‖ only where it needs no subtraction (λ_min ≥ 0)
        lo = _positive_root(lam_max, c_scale) if lam_min >= 0.0 else 0.0
        hi = max(hi, lo)
        if r_floor + hi == 0.0:  # M‖g‖ underflows: the step is below any representable scale
            return self._solution(np.zeros_like(gamma), 0.0, M, False, 0)
        t = hi if r0 is None or not (lo < r0 - r_floor < hi) else float(r0) - r_floor
        steps = 0
        eps = np.finfo(float).eps
        while steps < _MAX_SECULAR_STEPS:
            steps += 1
            shifted = base + t
            w = gamma / shifted
            w_norm = float(np.linalg.norm(w))
            r = r_floor + t
            phi = 1.0 / w_norm - M / r
            if phi > 0.0:
                hi = t
            elif phi < 0.0:
                lo = t
            else:
                break
            unit = w / w_norm  # d(1/‖w‖)/dt = uᵀ(u/(λ + t))/‖w‖ with u = w/‖w‖: no ‖w‖³ to underflow
            dphi = float(unit @ (unit / shifted)) / w_norm + M / (r * r)
            t_new = t - phi / dphi
            if not (lo < t_new < hi) or not math.isfinite(t_new):
                t_new = 0.5 * (lo + hi)
            if abs(t_new - t) <= 4.0 * eps * t or hi - lo <= 4.0 * eps * hi:
                t = t_new if lo < t_new < hi else t
                break
            t = t_new
        c = -gamma / (base + t)
        return self._solution(c, r_floor + t, M, False, steps)


def solve_cubic(g, H, M):
    """Minimize gᵀs + ½sᵀHs + (M/3)‖s‖³ exactly for a small dense (or sparse) symmetric H.

    H may be indefinite; the hard case is handled. Returns a :class:`CubicSolution`.
    """
    return CubicSubproblem.from_dense(g, H).solve(M)


def solve_cubic_tridiagonal(g, alpha, beta, M):
    """Minimize gᵀs + ½sᵀTs + (M/3)‖s‖³ for T = tridiag(β, α, β), through T's eigendecomposition."""
    return CubicSubproblem.from_tridiagonal(g, alpha, beta).solve(M)


def conjugate_gradient(apply, b, tolerance=1e-10, max_iterations=None, x0=None):
    """Solve A x = b for a symmetric positive definite A given as ``apply`` (numpy or torch).

    Stops when ‖b − Ax‖ ≤ tolerance·‖b‖. ``x0`` is an optional starting guess (one extra
    ``apply``). Returns (x, number of ``apply`` calls). Raises ValueError on non-positive
    curvature pᵀAp ≤ 0 (A not positive definite).
    """
    b_norm = norm(b)
    if b_norm == 0.0:
        return b * 0.0, 0
    if max_iterations is None:
        max_iterations = 10 * b.shape[0]
    calls = 0
    if x0 is None:
        x = b * 0.0
        residual = b.clone() if is_tensor(b) else b.copy()
    else:
        x = x0
        residual = b - apply(x0)
        calls = 1
    target = (tolerance * b_norm) ** 2
    rs = dot(residual, residual)
    if rs <= target:
        return x, calls
    p = residual.clone() if is_tensor(residual) else residual.copy()
    while calls < max_iterations:
        q = apply(p)
        calls += 1
        curvature = dot(p, q)
        if not curvature > 0.0:
            raise ValueError("H + rI is not positive definite: the CG cubic solver needs a convex H (λ_min ≥ 0)")
        step = rs / curvature
        x = x + step * p
        residual = residual - step * q
        rs_new = dot(residual, residual)
        if rs_new <= target:
            break
        p = residual + (rs_new / rs) * p
        rs = rs_new
    return x, calls


def solve_cubic_cg(
    hvp,
    g,
    M,
    r0=None,
    tolerance=1e-10,
    cg_tolerance=1e-10,
    max_cg_iterations=None,
    max_newton=100,
    derivative_tolerance=1e-4,
):
    """Minimize gᵀs + ½sᵀHs + (M/3)‖s‖³ matrix-free, for H ⪰ 0 given by ``hvp``.

    Newton's method on φ(r) = 1/‖s(r)‖ − M/r with s(r) = −(H + rI)⁻¹g; each Newton step
    costs two CG solves through HVPs: (H + rI)s = −g (warm-started from the previous
    step's s), and (H + rI)z = s for the derivative φ'(r) = sᵀz/‖s‖³ + M/r², which needs
    only a few digits (``derivative_tolerance``; an inexact derivative slows Newton from
    quadratic to fast linear convergence but not its limit, which the first solve fixes).
    Against cold starts and full-accuracy derivative solves this saves about 3× the HVPs
    on the w8a-like problem, with the same iterates. For convex H the root lies in
    (0, √(M‖g‖)], which is the safeguarding bracket; no hard case can occur. The model
    value uses the identity sᵀHs = −gᵀs − r‖s‖² (exact up to the CG residual), so it
    costs no extra HVP.

    Args:
        hvp: v ↦ Hv on numpy arrays or torch tensors (the kind of g).
        g: the gradient (numpy array or torch tensor).
        M: the cubic coefficient (> 0).
        r0: warm start for r (e.g. the previous iteration's r).
        tolerance: stop when |‖s‖ − r/M| ≤ tolerance·r/M.
        cg_tolerance: relative residual of the CG solves for s.
        derivative_tolerance: relative residual of the derivative's CG solve (at least
            ``cg_tolerance``).
        max_cg_iterations: cap per CG solve (default 10·d).
        max_newton: cap on Newton steps.

    Returns:
        A :class:`CubicSolution` with s of g's kind and ``hvps`` the HVPs used.
    """
    M = _check_M(M)
    tolerance = check_real("tolerance", tolerance, 0.0)
    cg_tolerance = check_real("cg_tolerance", cg_tolerance, 0.0, open_lower=True)
    derivative_tolerance = check_real("derivative_tolerance", derivative_tolerance, 0.0, open_lower=True)
    max_newton = check_count("max_newton", max_newton)
    gnorm = norm(g)
    if gnorm == 0.0:
        return CubicSolution(s=g * 0.0, r=0.0, model_value=0.0)
    lo, hi = 0.0, math.sqrt(M * gnorm)
    r = hi if r0 is None or not (0.0 < r0 < hi) else float(r0)
    hvps = 0
    steps = 0
    minus_g = -g
    s = None
    while True:
        steps += 1

        def shifted(v, shift=r):
            return hvp(v) + shift * v

        s, calls = conjugate_gradient(shifted, minus_g, cg_tolerance, max_cg_iterations, x0=s)
        hvps += calls
        s_norm = norm(s)
        radius = r / M
        if abs(s_norm - radius) <= tolerance * radius or steps >= max_newton:
            break
        phi = 1.0 / s_norm - M / r
        if phi > 0.0:
            hi = r
        else:
            lo = r
        z, calls = conjugate_gradient(shifted, s, max(derivative_tolerance, cg_tolerance), max_cg_iterations)
        hvps += calls
        dphi = dot(s, z) / s_norm**3 + M / (r * r)
        r_new = r - phi / dphi
        if r_new <= lo:
            r_new = lo + 0.25 * (r - lo)
        elif r_new >= hi:
            r_new = 0.5 * (lo + hi)
        if hi - lo <= 4.0 * np.finfo(float).eps * hi:
            break
        r = r_new
    gs = dot(g, s)
    model_value = 0.5 * gs - 0.5 * r * s_norm**2 + M / CUBIC_DENOMINATOR * s_norm**3
    return CubicSolution(s=s, r=r, model_value=float(model_value), iterations=steps, hvps=hvps)
