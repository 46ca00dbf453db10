"""Cubic-regularized Newton methods: full CRN, Krylov CRN and SSCN, with one loop and one trace.

:func:`trust_krylov` runs SciPy's trust-region Newton-Krylov method as an outside baseline
with the same trace.

Each iteration builds a cubic model of f around x in a subspace spanned by the columns of
an orthonormal V (s ∈ R^k, step V s),

    m(s) = ĝᵀs + ½ sᵀĤs + (M/3)‖s‖³,   ĝ = Vᵀ∇f(x),  Ĥ = Vᵀ∇²f(x)V

(the M/3 convention of :mod:`reprobook.secondorder.cubic`), and runs the adaptive line
search of the Krylov CRN authors' code on M:

    M ← M/2;  repeat: s = argmin m;  x⁺ = x + V s;
              accept if f(x⁺) ≤ f(x) − (−m(s)),  else M ← 2M,

so every accepted step decreases f by at least the model decrease (f is monotone). Two
safeguards, beyond the authors' code: M never falls below M_FLOOR_RATIO·M0 (M halves
after every accepted step, so a long run without rejections would otherwise drive it to
underflow; that small, the cubic step is the Newton step), and the doublings stop once M
exceeds 2^(max_backtracks − 1)·max(M, M_ref), with M_ref the largest M accepted so far
(or M0): ``max_backtracks`` doublings in the usual case, and enough to climb back from the
floor. If no M is accepted the method stops (reason ``"line_search"``; near the minimum
this is rounding noise in f). The methods differ only in the subspace:

* :func:`crn` — full space, V = I (Nesterov–Polyak CRN with the line search); the model is
  solved exactly from a dense Hessian (``solver="dense"``) or matrix-free with CG through
  HVPs (``solver="cg"``, for convex f);
* :func:`krylov_crn` — V from m Lanczos steps on ∇²f(x) started at ∇f(x) (Jiang, Raman,
  Sabach, Mokhtari, Hong, Cevher, AISTATS 2024): ĝ = ‖∇f(x)‖e₁ and Ĥ = T tridiagonal;
* :func:`sscn` — V = m random coordinate columns of the identity (stochastic subspace cubic
  Newton, Hanzely, Doikov, Nesterov, Richtárik, ICML 2020, coordinate version), with the
  exact partial gradient and partial Hessian.

**Trace.** Every method returns a :class:`SecondOrderTrace` whose arrays are indexed by
k = 0, …, K (entry 0 is the starting point): f(x_k), ‖∇f(x_k)‖, the cumulative counts of
HVPs, gradients and function values, the wall time, the accepted M (M0 at k = 0), ‖x_k −
x_{k−1}‖, the model decrease, the backtracks, whether the step was accepted and the
subspace dimension. HVP counts follow the oracles'
convention: a k×k explicit (partial) Hessian counts as k HVPs. SSCN needs no full
gradient; its ‖∇f(x_k)‖ is computed for the trace only (``monitor=True``) and neither
counted nor timed.

**Stopping rules** (shared; checked at the start of each iteration): ‖∇f(x_k)‖ ≤
``tolerance``, f(x_k) ≤ ``f_target`` (when given), k = ``iterations``, elapsed time ≥
``time_limit``, an accepted step with
‖x_k − x_{k−1}‖ < ``step_tolerance`` (not for SSCN: a zero step in one random block says
nothing about the others), or a failed line search (SSCN instead skips the block).
``trace.stop_reason`` names the rule.

The methods run with numpy's and scipy's BLAS on one thread (their dense work is BLAS-1/2
on long vectors and small eigendecompositions; see
:func:`~reprobook.secondorder.lanczos.one_blas_thread`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from reprobook.checks import check_count, check_real
from reprobook.secondorder.cubic import CubicSubproblem, solve_cubic_cg
from reprobook.secondorder.lanczos import lanczos, like, norm, one_blas_thread, to_numpy
from reprobook.secondorder.oracles import Oracle, frozen

#: full CRN switches from the dense to the CG solver at this dimension (``solver="auto"``).
DENSE_LIMIT = 500

#: the line search never takes M below M_FLOOR_RATIO·M0 (see the module's docstring).
M_FLOOR_RATIO = 1e-12


@dataclass
class SecondOrderTrace:
    """What a cubic-Newton method did, iteration by iteration (arrays indexed by k = 0, …, K).

    Attributes:
        method: the method's name.
        x: the final iterate x_K (the oracle's kind of vector).
        objective: f(x_k).
        gradient_norm: ‖∇f(x_k)‖ (NaN for SSCN with ``monitor=False``, except k = 0).
        hvps: cumulative Hessian-vector products (a k×k explicit Hessian counts as k).
        gradients: cumulative gradient evaluations (a partial gradient counts as one).
        values: cumulative function evaluations (including rejected trial points).
        time: wall-clock seconds since the start (monitoring excluded).
        M: the accepted regularization M_k (M0 at k = 0).
        step_norm: ‖x_k − x_{k−1}‖ (0 at k = 0).
        model_decrease: −m(s) of the accepted step into x_k (0 at k = 0); the line search
            guarantees f(x_{k−1}) − f(x_k) ≥ model_decrease[k] ≥ 0.
        backtracks: the doublings of M in iteration k (0 at k = 0).
        accepted: whether iteration k's step was accepted (True at k = 0; False only for
            an SSCN iteration whose line search failed and which was skipped).
        subspace: the dimension of the model's subspace in iteration k (0 at k = 0).
        stop_reason: "tolerance", "f_target", "iterations", "time_limit", "step_norm" or
            "line_search" ("breakdown" for :func:`trust_krylov`).
    """

    method: str
    x: Any
    objective: np.ndarray
    gradient_norm: np.ndarray
    hvps: np.ndarray
    gradients: np.ndarray
    values: np.ndarray
    time: np.ndarray
    M: np.ndarray
    step_norm: np.ndarray
    model_decrease: np.ndarray
    backtracks: np.ndarray
    accepted: np.ndarray
    subspace: np.ndarray
    stop_reason: str

    @property
    def iterations(self):
        """The iteration indices k = 0, …, K."""
        return np.arange(len(self.objective))

    def gap(self, f_star):
        """f(x_k) − f* for k = 0, …, K."""
        return self.objective - float(f_star)

    def iterations_to(self, f_star, accuracy):
        """The first k with f(x_k) − f* ≤ accuracy, or None if never reached."""
        reached = np.flatnonzero(self.gap(f_star) <= accuracy)
        return int(reached[0]) if reached.size else None

    def hvps_to(self, f_star, accuracy, lower_bound=False):
        """The HVPs spent until the first k with f(x_k) − f* ≤ accuracy.

        If that never happens: None, or with ``lower_bound`` every HVP the run spent (a lower
        bound on what reaching the accuracy would have cost).
        """
        reached = self.iterations_to(f_star, accuracy)
        if reached is None:
            return int(self.hvps[-1]) if lower_bound else None
        return int(self.hvps[reached])


@dataclass
class _Model:
    """One iteration's cubic model: ``solve(M, r0)`` → CubicSolution, ``trial(s)`` → (x⁺, f(x⁺))."""

    solve: Any
    trial: Any
    dimension: int


def _check_oracle(oracle):
    if not isinstance(oracle, Oracle):
        raise TypeError(f"oracle must be an Oracle, got {type(oracle).__name__}")


def _check_subspace(m, oracle):
    m = check_count("m", m)
    if m > oracle.dim:
        raise ValueError(f"m must be <= d = {oracle.dim}, got {m}")
    return m


def _run(*args, **kwargs):
    """:func:`_loop` with numpy's and scipy's BLAS on one thread (see ``one_blas_thread``)."""
    with one_blas_thread():
        return _loop(*args, **kwargs)


def _loop(
    method,
    oracle,
    x0,
    M0,
    iterations,
    tolerance,
    time_limit,
    step_tolerance,
    max_backtracks,
    build_model,
    gradient="algorithm",
    use_step_rule=True,
    skip_failures=False,
    f_target=None,
):
    """The shared loop: gradient, model, line search on M, trace, stopping rules.

    ``gradient`` is "algorithm" (the method uses ∇f(x_k)), or "monitor" / "first" for a
    method that does not: ‖∇f(x_k)‖ is then computed for the trace at every k / at k = 0
    only, neither timed nor counted. With ``skip_failures`` a failed line search leaves x
    and M unchanged and counts as an iteration (a random subspace can be at its optimum
    while others are not) instead of stopping the run.
    """
    _check_oracle(oracle)
    x = frozen(oracle.vector("x0", x0))
    M = check_real("M0", M0, 0.0, open_lower=True)
    iterations = check_count("iterations", iterations, 0)
    tolerance = check_real("tolerance", tolerance, 0.0)
    if time_limit is not None:
        time_limit = check_real("time_limit", time_limit, 0.0, open_lower=True)
    step_tolerance = check_real("step_tolerance", step_tolerance, 0.0)
    max_backtracks = check_count("max_backtracks", max_backtracks, 0)
    if f_target is not None:
        f_target = check_real("f_target", f_target)

    floor = M_FLOOR_RATIO * M
    reference = M  # the largest accepted M so far
    start = oracle.counts()
    hidden = {"values": 0, "gradients": 0, "hvps": 0}  # monitoring work, not charged
    rows = {
        name: []
        for name in (
            "objective",
            "gradient_norm",
            "hvps",
            "gradients",
            "values",
            "time",
            "M",
            "step_norm",
            "model_decrease",
            "backtracks",
            "accepted",
            "subspace",
        )
    }
    elapsed = 0.0
    clock = time.perf_counter()
    f = oracle.value(x)
    step_norm, decrease, backtracks, accepted, dimension = 0.0, 0.0, 0, True, 0
    stop_reason = None
    r_warm = None
    k = 0
    while True:
        if gradient == "algorithm":
            g = oracle.gradient(x)
            gnorm = norm(g)
        else:  # the method needs no full gradient: compute it for the trace, untimed and uncounted
            g, gnorm = None, float("nan")
            if gradient == "monitor" or k == 0:
                elapsed += time.perf_counter() - clock
                before = oracle.counts()
                gnorm = norm(oracle.gradient(x))
                after = oracle.counts()
                for name in hidden:
                    hidden[name] += after[name] - before[name]
                clock = time.perf_counter()
        elapsed += time.perf_counter() - clock
        clock = time.perf_counter()
        counts = oracle.counts()
        rows["objective"].append(f)
        rows["gradient_norm"].append(gnorm)
        for name in ("hvps", "gradients", "values"):
            rows[name].append(counts[name] - start[name] - hidden[name])
        rows["time"].append(elapsed)
        rows["M"].append(M)
        rows["step_norm"].append(step_norm)
        rows["model_decrease"].append(decrease)
        rows["backtracks"].append(backtracks)
        rows["accepted"].append(accepted)
        rows["subspace"].append(dimension)
        if stop_reason is None:
            if gnorm <= tolerance:
                stop_reason = "tolerance"
            elif f_target is not None and f <= f_target:
                stop_reason = "f_target"
            elif k >= iterations:
                stop_reason = "iterations"
            elif time_limit is not None and elapsed >= time_limit:
                stop_reason = "time_limit"
        if stop_reason is not None:
            break

        model = build_model(x, g, gnorm, k)
        trial_M = max(0.5 * M, floor)
        ceiling = 2.0 ** (max_backtracks - 1) * max(M, reference)
        backtracks = 0
        while True:
            solution = model.solve(trial_M, r_warm)
            x_new, f_new = model.trial(solution.s)
            decrease = max(solution.model_decrease, 0.0)
            accepted = f_new <= f - decrease
            if accepted or 2.0 * trial_M > ceiling * (1.0 + 1e-12):
                break
            trial_M *= 2.0
            backtracks += 1
        if not accepted and skip_failures:
            step_norm, decrease, dimension = 0.0, 0.0, model.dimension
            M = trial_M  # the largest M tried: the next iteration starts from M/2
            k += 1
            continue
        if not accepted:
            stop_reason = "line_search"
            elapsed += time.perf_counter() - clock
            break
        r_warm = solution.r
        step_norm = solution.step_norm
        x, f, M, dimension = x_new, f_new, trial_M, model.dimension
        reference = max(reference, M)
        k += 1
        if use_step_rule and step_norm < step_tolerance:
            stop_reason = "step_norm"
    if stop_reason == "line_search":
        # the failed iteration's work is part of the run: charge it to the last record
        counts = oracle.counts()
        for name in ("hvps", "gradients", "values"):
            rows[name][-1] = counts[name] - start[name] - hidden[name]
        rows["time"][-1] = elapsed
    arrays = {
        name: np.asarray(
            values,
            dtype=np.int64
            if name in ("hvps", "gradients", "values", "backtracks", "subspace")
            else bool
            if name == "accepted"
            else np.float64,
        )
        for name, values in rows.items()
    }
    x = x.clone() if hasattr(x, "clone") else np.array(x)
    return SecondOrderTrace(method=method, x=x, stop_reason=stop_reason, **arrays)


def krylov_crn(
    oracle,
    x0,
    m=10,
    M0=1e-3,
    iterations=100,
    tolerance=1e-8,
    time_limit=None,
    reorthogonalize=False,
    step_tolerance=1e-12,
    max_backtracks=20,
    breakdown_tol=1e-8,
    f_target=None,
):
    """Krylov cubic regularized Newton (Jiang et al., AISTATS 2024) with the adaptive line search.

    Per iteration: g = ∇f(x); m Lanczos steps on ∇²f(x) from g (m HVPs, fewer on an
    invariant subspace) give V (d×k) and T; the cubic model in K_k(∇²f(x), g) has gradient
    ‖g‖e₁ and Hessian T, solved exactly through T's eigendecomposition; x⁺ = x + V s.

    Args:
        oracle: an :class:`~reprobook.secondorder.oracles.Oracle`.
        x0: the starting point (length d).
        m: the Krylov dimension, 1 ≤ m ≤ d.
        M0: the initial cubic coefficient (> 0; convention (M/3)‖s‖³).
        iterations: the iteration cap (≥ 0).
        tolerance: stop when ‖∇f(x)‖ ≤ tolerance.
        time_limit: stop when the elapsed seconds reach it (None: no limit).
        reorthogonalize: full reorthogonalization in Lanczos.
        step_tolerance: stop after an accepted step shorter than this.
        max_backtracks: the most doublings of M per iteration (more when M sits far below
            the largest M accepted so far; see the module's docstring).
        breakdown_tol: Lanczos' relative invariant-subspace threshold.
        f_target: stop once f(x_k) ≤ f_target (None: no such rule), e.g. f* plus the
            accuracy at which methods are compared, so that no work is spent beyond it.

    Returns:
        A :class:`SecondOrderTrace`.
    """
    _check_oracle(oracle)
    m = _check_subspace(m, oracle)
    reference = oracle.vector("x0", x0)

    def build_model(x, g, gnorm, k):
        result = lanczos(lambda v: oracle.hvp(x, v), g, m, reorthogonalize=reorthogonalize, breakdown_tol=breakdown_tol)
        subspace_g = np.zeros(result.steps)
        subspace_g[0] = gnorm
        problem = CubicSubproblem.from_tridiagonal(subspace_g, result.alpha, result.beta)
        V = result.basis

        def trial(s):
            x_new = frozen(x + V @ like(s, reference))
            return x_new, oracle.value(x_new)

        return _Model(solve=problem.solve, trial=trial, dimension=result.steps)

    return _run(
        "Krylov CRN",
        oracle,
        x0,
        M0,
        iterations,
        tolerance,
        time_limit,
        step_tolerance,
        max_backtracks,
        build_model,
        f_target=f_target,
    )


def crn(
    oracle,
    x0,
    M0=1e-3,
    iterations=100,
    tolerance=1e-8,
    time_limit=None,
    solver="auto",
    step_tolerance=1e-12,
    max_backtracks=20,
    cg_tolerance=1e-10,
    secular_tolerance=1e-10,
    f_target=None,
):
    """Cubic regularized Newton on the full d-dimensional model, with the adaptive line search.

    Args:
        solver: "dense" (the Hessian from ``oracle.hessian``: closed form when the oracle
            has one, else d HVPs; one eigendecomposition per iteration, exact subproblem,
            fine for small d), "cg" (matrix-free secular Newton with CG through HVPs, for
            convex f; see :func:`~reprobook.secondorder.cubic.solve_cubic_cg`), or "auto"
            (dense when d < 500, else CG).
        cg_tolerance, secular_tolerance: the CG solver's relative residual and secular-
            equation tolerance (solver "cg" only).

    The other arguments are those of :func:`krylov_crn`. Returns a :class:`SecondOrderTrace`.
    """
    _check_oracle(oracle)
    if solver not in ("auto", "dense", "cg"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'cg', got {solver!r}")
    if solver == "auto":
        solver = "dense" if oracle.dim < DENSE_LIMIT else "cg"
    cg_tolerance = check_real("cg_tolerance", cg_tolerance, 0.0, open_lower=True)
    secular_tolerance = check_real("secular_tolerance", secular_tolerance, 0.0)
    reference = oracle.vector("x0", x0)

    def build_model(x, g, gnorm, k):
        if solver == "dense":
            problem = CubicSubproblem.from_dense(to_numpy(g), oracle.hessian(x))

            def trial(s):
                x_new = frozen(x + like(s, reference))
                return x_new, oracle.value(x_new)

            return _Model(solve=problem.solve, trial=trial, dimension=oracle.dim)

        def solve(M, r0):
            return solve_cubic_cg(
                lambda v: oracle.hvp(x, v), g, M, r0=r0, tolerance=secular_tolerance, cg_tolerance=cg_tolerance
            )

        def trial_cg(s):
            x_new = frozen(x + s)
            return x_new, oracle.value(x_new)

        return _Model(solve=solve, trial=trial_cg, dimension=oracle.dim)

    return _run(
        f"CRN ({solver})",
        oracle,
        x0,
        M0,
        iterations,
        tolerance,
        time_limit,
        step_tolerance,
        max_backtracks,
        build_model,
        f_target=f_target,
    )


def sscn(
    oracle,
    x0,
    m=10,
    M0=1e-3,
    seed=42,
    iterations=100,
    tolerance=1e-8,
    time_limit=None,
    max_backtracks=20,
    monitor=True,
    f_target=None,
):
    """Stochastic subspace cubic Newton, coordinate version (Hanzely et al., ICML 2020).

    Per iteration: I ⊂ {0, …, d−1}, |I| = m, uniformly without replacement; the exact
    partial gradient ∇f(x)[I] and partial Hessian ∇²f(x)[I, I] (closed form for
    :class:`~reprobook.secondorder.oracles.LogisticOracle`, counted as m HVPs; other
    oracles use m HVPs with unit vectors); the cubic model in R^m; x⁺ = x + Σ s_j e_{I_j},
    evaluated with the logistic oracle's incremental margins update.

    Args:
        seed: an int ≥ 0 or a numpy Generator for the coordinate draws (default 42, as the
            authors' code).
        monitor: compute ‖∇f(x_k)‖ at every k for the trace and the tolerance rule (a full
            gradient, neither counted nor timed); if False it is NaN after k = 0.

    The other arguments are those of :func:`krylov_crn`. The step-norm rule does not apply,
    and a failed line search (all doublings rejected, typically a block already at its
    optimum up to rounding) leaves x unchanged, keeps the largest M tried and moves on to
    the next block instead of stopping. Returns a :class:`SecondOrderTrace`.
    """
    _check_oracle(oracle)
    m = _check_subspace(m, oracle)
    if isinstance(seed, np.random.Generator):
        rng = seed
    else:
        rng = np.random.default_rng(check_count("seed", seed, 0))
    d = oracle.dim

    def build_model(x, g, gnorm, k):
        index = np.sort(rng.choice(d, size=m, replace=False))
        problem = CubicSubproblem.from_dense(oracle.partial_gradient(x, index), oracle.partial_hessian(x, index))

        def trial(s):
            return oracle.coordinate_trial(x, index, s)

        return _Model(solve=problem.solve, trial=trial, dimension=m)

    return _run(
        "SSCN",
        oracle,
        x0,
        M0,
        iterations,
        tolerance,
        time_limit,
        0.0,
        max_backtracks,
        build_model,
        gradient="monitor" if monitor else "first",
        use_step_rule=False,
        skip_failures=True,
        f_target=f_target,
    )


def trust_krylov(
    oracle, x0, iterations=100, tolerance=1e-8, f_target=None, initial_trust_radius=1.0, max_trust_radius=1000.0
):
    """SciPy's trust-region Newton method ``minimize(method="trust-krylov")``, traced like the others.

    A baseline from outside the paper: a trust-region Newton method whose subproblem,
    min gᵀs + ½sᵀHs over ‖s‖ ≤ Δ, is solved by the Generalized Lanczos Trust Region method
    (GLTR; Gould, Lucidi, Roma, Toint, SIAM J. Optim. 1999) of the trlib library (Lenders,
    Kirches, Potschka, 2018), with HVPs only. Unlike Krylov CRN's fixed m, the Lanczos space
    of each iteration grows until the subproblem is solved to a relative accuracy that
    tightens as ‖∇f‖ shrinks (SciPy's default ``inexact=True`` forcing sequence), so early
    iterations take rough steps and late ones nearly exact Newton steps; the radius Δ
    shrinks after a poor step (rejected if f does not decrease enough) and grows, up to
    ``max_trust_radius``, after a good one on the boundary.

    The trace has the fields of :class:`SecondOrderTrace`, one entry per SciPy iteration
    (accepted or rejected step): ``M`` and ``model_decrease`` are NaN, ``backtracks`` 0,
    ``subspace`` the HVPs of the iteration (its Lanczos steps), and ‖∇f(x_k)‖ is computed
    for the trace, neither counted nor timed. ``stop_reason`` is "tolerance" (SciPy's
    ``gtol``), "iterations", "f_target", or "breakdown" (SciPy's status 2 or 3: the model
    predicted no decrease, or a linear-algebra error); NumPy's overflow warnings on the way
    to a breakdown are silenced, the stop reason records it.

    **Not bit-reproducible.** SciPy (1.17) hands trlib a workspace allocated with
    ``np.empty``, and the results can change from one call to the next with the same input:
    on the w8a-like problem the same run took 190, 207 or 217 HVPs, and on separable data
    it broke down in one call and reached the target in the next. Use its numbers as an
    indication, never in a test or a claim that must print the same on every run.

    Args:
        oracle: an :class:`~reprobook.secondorder.oracles.Oracle`.
        x0: the starting point (length d).
        iterations: SciPy's ``maxiter``.
        tolerance: SciPy's ``gtol``: stop when ‖∇f(x)‖ < tolerance.
        f_target: stop once f(x_k) ≤ f_target (None: no such rule).
        initial_trust_radius, max_trust_radius: SciPy's options (defaults SciPy's).

    Returns:
        A :class:`SecondOrderTrace` with method "trust-krylov".
    """
    from scipy.optimize import minimize

    _check_oracle(oracle)
    iterations = check_count("iterations", iterations, 0)
    tolerance = check_real("tolerance", tolerance, 0.0)
    if f_target is not None:
        f_target = check_real("f_target", f_target)
    initial_trust_radius = check_real("initial_trust_radius", initial_trust_radius, 0.0, open_lower=True)
    max_trust_radius = check_real("max_trust_radius", max_trust_radius, initial_trust_radius)
    x = oracle.vector("x0", x0)
    start = oracle.counts()
    hidden = {"values": 0, "gradients": 0, "hvps": 0}
    rows = {name: [] for name in ("objective", "gradient_norm", "hvps", "gradients", "values", "time", "step_norm")}
    clock = [time.perf_counter(), 0.0]  # the last resumption, the elapsed time

    def monitor(point, value):
        clock[1] += time.perf_counter() - clock[0]
        before = oracle.counts()
        if value is None:
            value = oracle.value(oracle.from_numpy(point))
        gnorm = norm(oracle.gradient(oracle.from_numpy(point)))
        after = oracle.counts()
        for name in hidden:
            hidden[name] += after[name] - before[name]
        rows["objective"].append(float(value))
        rows["gradient_norm"].append(float(gnorm))
        rows["step_norm"].append(float(np.linalg.norm(point - x)) if rows["time"] else 0.0)
        for name in ("hvps", "gradients", "values"):
            rows[name].append(after[name] - start[name] - hidden[name])
        rows["time"].append(clock[1])
        clock[0] = time.perf_counter()
        return float(value)

    def callback(intermediate_result):
        nonlocal x
        value = monitor(intermediate_result.x, intermediate_result.fun)
        x = np.array(intermediate_result.x, dtype=np.float64)
        if f_target is not None and value <= f_target:
            raise StopIteration

    first = monitor(x, None)
    if (f_target is not None and first <= f_target) or iterations == 0:
        result = None
    else:
        with one_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
            result = minimize(
                lambda v: oracle.value(oracle.from_numpy(v)),
                x,
                jac=lambda v: to_numpy(oracle.gradient(oracle.from_numpy(v))),
                hessp=lambda v, p: to_numpy(oracle.hvp(oracle.from_numpy(v), oracle.from_numpy(p))),
                method="trust-krylov",
                callback=callback,
                options={
                    "gtol": tolerance,
                    "maxiter": iterations,
                    "initial_trust_radius": initial_trust_radius,
                    "max_trust_radius": max_trust_radius,
                },
            )
    # SciPy does its last work (the final gradient) after the last callback: charge it there
    final = oracle.counts()
    for name in ("hvps", "gradients", "values"):
        rows[name][-1] = final[name] - start[name] - hidden[name]
    objective = np.asarray(rows["objective"])
    if f_target is not None and objective[-1] <= f_target:
        stop_reason = "f_target"
    elif result is None or result.status == 1:
        stop_reason = "iterations"
    elif result.status == 0:
        stop_reason = "tolerance"
    else:
        stop_reason = "breakdown"
    hvps = np.asarray(rows["hvps"], dtype=np.int64)
    size = objective.size
    return SecondOrderTrace(
        method="trust-krylov",
        x=oracle.from_numpy(x),
        objective=objective,
        gradient_norm=np.asarray(rows["gradient_norm"]),
        hvps=hvps,
        gradients=np.asarray(rows["gradients"], dtype=np.int64),
        values=np.asarray(rows["values"], dtype=np.int64),
        time=np.asarray(rows["time"]),
        M=np.full(size, np.nan),
        step_norm=np.asarray(rows["step_norm"]),
        model_decrease=np.full(size, np.nan),
        backtracks=np.zeros(size, dtype=np.int64),
        accepted=np.concatenate([[True], np.asarray(rows["step_norm"][1:]) > 0.0]).astype(bool),
        subspace=np.diff(hvps, prepend=0),
        stop_reason=stop_reason,
    )
