"""First-order methods for simple convex bi-level problems.

Each method solves  min ω(x) over x ∈ argmin φ(x)  for a
:class:`~reprobook.optim.bilevel_problems.BilevelProblem` (φ = f + g,
ω = ω_s + ω_n) and returns a :class:`BilevelTrace` that records φ(x_k), ω(x_k)
and, when x* is known, ‖x_k − x*‖ for k = 0, …, K.

* :func:`fbipg`: FBi-PG (Merchav–Sabach–Teboulle, arXiv:2407.21221): one FISTA
  step per iteration on φ + η_k ω with a decreasing weight η_k = (k + a)^{−γ}.
* :func:`bipg`: the same without momentum (iteratively regularized proximal gradient).
* :func:`fista_fixed_regularization`: FISTA on φ + η ω with a fixed η (biased).
* :func:`proximal_gradient`: the proximal gradient method on φ alone (a control).
* :func:`bisg`: Bi-SG (Merchav & Sabach, 2023), a proximal-gradient step on φ
  followed by a subgradient step on ω.
* :func:`bigsam`: BiG-SAM (Sabach & Shtern, 2017), for a smooth, strongly convex ω.

All methods run through one loop, :func:`_run`, which records the trace; they
differ only in their one-step update rule. :func:`run_grid` runs a method over a
grid of settings (a baseline's tuning grid, FBi-PG's exponents) and
:meth:`GridRun.best` picks the setting with the smallest score.

Measures of a run: :func:`fit_rate` (the fitted slope p of a gap ≈ C·k^p),
:func:`fit_envelope_rate` (the same for the tail supremum of a quantity that may
vanish, such as the outer excess), :func:`iterations_to_reach`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from reprobook.checks import check_count, check_real, finite_array
from reprobook.optim.bilevel_problems import BilevelProblem


@dataclass
class BilevelTrace:
    """What a bi-level method did, iteration by iteration.

    Attributes:
        method: the method's name.
        x: the final iterate x_K.
        inner_values: φ(x_k) for k = 0, …, K.
        outer_values: ω(x_k) for k = 0, …, K.
        distances: ‖x_k − x*‖ for k = 0, …, K, or None when x* is unknown.
    """

    method: str
    x: np.ndarray
    inner_values: np.ndarray
    outer_values: np.ndarray
    distances: np.ndarray | None

    @property
    def iterations(self):
        """The iteration indices k = 0, …, K of the recorded values."""
        return np.arange(len(self.inner_values))

    def inner_gap(self, problem):
        """φ(x_k) − φ* for k = 0, …, K (needs ``problem.inner_optimum``)."""
        if problem.inner_optimum is None:
            raise ValueError(f"problem {problem.name!r} has no known inner_optimum")
        return self.inner_values - problem.inner_optimum

    def outer_gap(self, problem):
        """The signed outer gap ω(x_k) − ω* for k = 0, …, K (needs ``problem.outer_optimum``).

        Negative values are possible and informative: an iterate outside X* can
        undershoot ω*, so the sign tells an infeasible iterate (below ω*) from one
        that has not yet reached the best point of X* (above ω*).
        """
        if problem.outer_optimum is None:
            raise ValueError(f"problem {problem.name!r} has no known outer_optimum")
        return self.outer_values - problem.outer_optimum

    def outer_excess(self, problem):
        """The positive part max(ω(x_k) − ω*, 0) of the outer gap, k = 0, …, K.

        Rates for the outer objective bound this one-sided excess; the undershoot
        ω* − ω(x_k) of an infeasible iterate is controlled by its inner gap instead.
        """
        return np.maximum(self.outer_gap(problem), 0.0)


def regularization_weight(k, a=3.0, gamma=1.5, c=1.0):
    """The regularization weight η_k = c·(k + a)^{−γ} (vectorized over k ≥ 0).

    FBi-PG uses c = 1; the scale c > 0 is a tuning parameter of Bi-PG.
    """
    k = _iteration_index(k)
    a = check_real("a", a, 2.0)
    gamma = check_real("gamma", gamma, 0.0, open_lower=True)
    c = check_real("c", c, 0.0, open_lower=True)
    return c * (k + a) ** (-gamma)


def fista_momentum(k, a=3.0):
    """The momentum α_k = k/(k + a + 1) = (t_k − 1)/t_{k+1} of FISTA with t_k = (k + a)/a.

    Vectorized over k ≥ 0; α_0 = 0.
    """
    k = _iteration_index(k)
    a = check_real("a", a, 2.0)
    return k / (k + a + 1.0)


def _iteration_index(k):
    """Check that k holds non-negative whole numbers; return it as a float array."""
    k = finite_array("k", k)
    if np.any(k < 0) or np.any(k != np.round(k)):
        raise ValueError("k must hold non-negative integers")
    return k


def fit_rate(iterations_index, values, start, stop):
    """The fitted slope p of values ≈ C·k^p over start ≤ k ≤ stop (least squares in log–log).

    Points with k ≤ 0 or values ≤ 0 (a gap below floating-point resolution)
    have no logarithm and are left out; ValueError if fewer than 2 remain.
    """
    iterations_index = finite_array("iterations_index", iterations_index)
    if iterations_index.ndim != 1:
        raise ValueError(f"iterations_index must be 1-D, got {iterations_index.ndim} dimensions")
    values = finite_array("values", values, iterations_index.shape)
    start = check_real("start", start)
    stop = check_real("stop", stop, start)
    kept = (iterations_index >= start) & (iterations_index <= stop) & (iterations_index > 0) & (values > 0)
    if np.count_nonzero(kept) < 2:
        raise ValueError(
            f"fit_rate needs at least 2 points with k in [{start:g}, {stop:g}], "
            f"k > 0 and values > 0, got {np.count_nonzero(kept)}"
        )
    slope, _ = np.polyfit(np.log(iterations_index[kept]), np.log(values[kept]), 1)
    return float(slope)


def tail_supremum(values):
    """The tail supremum s_k = max_{j ≥ k} values_j, a non-increasing envelope.

    A bound values_k ≤ C·k^p (p < 0) holds for every k exactly when it holds for
    s_k, so the envelope measures a rate without the oscillations of the raw values.
    """
    values = finite_array("values", values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got {values.ndim} dimensions")
    return np.maximum.accumulate(values[::-1])[::-1]


def fit_envelope_rate(iterations_index, values, start, stop):
    """The fitted slope of the tail supremum of non-negative ``values`` over start ≤ k ≤ stop.

    Returns −inf when the envelope is 0 on the whole window (the quantity has
    vanished: any rate holds). Used for the outer excess max(ω(x_k) − ω*, 0).
    """
    values = finite_array("values", values)
    if np.any(values < 0):
        raise ValueError("values must be non-negative")
    iterations_index = finite_array("iterations_index", iterations_index, values.shape)
    envelope = tail_supremum(values)
    window = (iterations_index >= start) & (iterations_index <= stop)
    if not np.any(envelope[window] > 0):
        return -math.inf
    return fit_rate(iterations_index, envelope, start, stop)


def iterations_to_reach(values, level):
    """The first index k with values_k ≤ level, or None when no value reaches it."""
    values = finite_array("values", values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got {values.ndim} dimensions")
    level = check_real("level", level)
    reached = np.flatnonzero(values <= level)
    return int(reached[0]) if reached.size else None


def _check_problem(problem):
    if not isinstance(problem, BilevelProblem):
        raise TypeError(f"problem must be a BilevelProblem, got {type(problem).__name__}")


def _initial_point(problem, x0):
    """x0 as a fresh float64 vector of length problem.dim (zeros when None)."""
    if x0 is None:
        return np.zeros(problem.dim)
    return np.array(finite_array("x0", x0, (problem.dim,)))


def _step_size(name, value, default):
    """A step size: ``default`` when ``value`` is None, else a checked number > 0."""
    return default if value is None else check_real(name, value, 0.0, open_lower=True)


def _run(method, problem, x0, iterations, update, callback):
    """The shared loop: x_{k+1} = update(k, x_k, x_{k−1}), with x_{−1} = x_0, recorded.

    ``callback(k, x_k)`` is called after every iteration k = 1, …, K.
    """
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    x = _initial_point(problem, x0)
    inner_values = np.empty(iterations + 1)
    outer_values = np.empty(iterations + 1)
    distances = None if problem.solution is None else np.empty(iterations + 1)

    def record(k, x):
        inner_values[k] = problem.inner(x)
        outer_values[k] = problem.outer(x)
        if distances is not None:
            distances[k] = np.linalg.norm(x - problem.solution)

    record(0, x)
    x_previous = x
    for k in range(iterations):
        x, x_previous = update(k, x, x_previous), x
        record(k + 1, x)
        if callback is not None:
            callback(k + 1, x)
    return BilevelTrace(method, x, inner_values, outer_values, distances)


def _regularized_proximal_gradient(method, problem, x0, iterations, weights, momentum, step, callback):
    """Proximal gradient with momentum on φ + η_k ω (the loop of FBi-PG, Bi-PG and FISTA).

        y^k     = x^k + α_k (x^k − x^{k−1})
        x^{k+1} = prox_{s(g + η_k ω_n)}( y^k − s(∇f(y^k) + η_k ∇ω_s(y^k)) )

    ``weights`` holds η_0, …, η_{K−1} and ``momentum`` α_0, …, α_{K−1}. The
    default step s = 1/(L_f + max_k η_k · L_ω) is below 1/L of the smooth part
    f + η_k ω_s at every k.
    """
    step = _step_size("step", step, 1.0 / (problem.inner_lipschitz + weights.max() * problem.outer_lipschitz))

    def update(k, x, x_previous):
        y = x + momentum[k] * (x - x_previous)
        eta = weights[k]
        gradient = problem.inner_grad(y) + eta * problem.outer_smooth_grad(y)
        return problem.prox(y - step * gradient, step, eta)

    return _run(method, problem, x0, iterations, update, callback)


def fbipg(problem, x0=None, iterations=2000, *, a=3.0, gamma=1.5, c=1.0, step=None, callback=None):
    """FBi-PG, the Fast Bi-level Proximal Gradient method (arXiv:2407.21221).

    FISTA on the dynamic objective φ + η_k ω, with x^{−1} = x^0:

        η_k     = c·(k + a)^{−γ},   α_k = k/(k + a + 1)   (t_k = (k + a)/a)
        y^k     = x^k + α_k (x^k − x^{k−1})
        x^{k+1} = prox_{s(g + η_k ω_n)}( y^k − s(∇f(y^k) + η_k ∇ω_s(y^k)) )

    Requires a ≥ 2, γ > 0 and c > 0 (the paper's scheme has c = 1). Default
    step s = 1/(L_f + η_0 L_ω), safe for every k since η_k decreases. The paper
    proves an O(1/k²) inner rate and simultaneous sub-linear inner and outer
    rates; its exact range of γ could not be read and is not restated here.
    """
    _check_problem(problem)
    iterations = check_count("iterations", iterations)
    indices = np.arange(iterations)
    return _regularized_proximal_gradient(
        "FBi-PG",
        problem,
        x0,
        iterations,
        regularization_weight(indices, a, gamma, c),
        fista_momentum(indices, a),
        step,
        callback,
    )


def bipg(problem, x0=None, iterations=2000, *, a=3.0, gamma=1.5, c=1.0, step=None, callback=None):
    """Bi-PG: the iteratively regularized proximal gradient method (FBi-PG without momentum).

        η_k     = c·(k + a)^{−γ}
        x^{k+1} = prox_{s(g + η_k ω_n)}( x^k − s(∇f(x^k) + η_k ∇ω_s(x^k)) )

    Requires a ≥ 2, γ > 0 and c > 0; default step s = 1/(L_f + η_0 L_ω). With
    that step each iteration decreases φ + η_k ω, so when ω ≥ 0 the sequence
    φ(x^k) + η_k ω(x^k) is non-increasing. A step up to 2/(L_f + η_0 L_ω)
    (the peer implementations use 1.9/L_f) still converges, without that
    monotonicity. The peer implementation (Boț–Chenchene–Csetnek–Hulett 2025)
    pairs Bi-PG with half of FBi-PG's exponent, γ/2, and the step 1.9/L_f.
    """
    _check_problem(problem)
    iterations = check_count("iterations", iterations)
    return _regularized_proximal_gradient(
        "Bi-PG",
        problem,
        x0,
        iterations,
        regularization_weight(np.arange(iterations), a, gamma, c),
        np.zeros(iterations),
        step,
        callback,
    )


def fista_fixed_regularization(problem, x0=None, iterations=2000, *, eta, a=3.0, step=None, callback=None):
    """FISTA (t_k = (k + a)/a) on φ + η ω with a fixed weight η ≥ 0.

    The same update as :func:`fbipg` with η_k ≡ η. It converges to a minimizer
    of the regularized problem φ + η ω, not to the bi-level solution: a fixed
    η leaves a bias that only a vanishing η_k removes. η = 0 is plain FISTA on φ.
    Default step s = 1/(L_f + η L_ω).
    """
    _check_problem(problem)
    iterations = check_count("iterations", iterations)
    eta = check_real("eta", eta, 0.0)
    return _regularized_proximal_gradient(
        "FISTA (fixed eta)",
        problem,
        x0,
        iterations,
        np.full(iterations, eta),
        fista_momentum(np.arange(iterations), a),
        step,
        callback,
    )


def proximal_gradient(problem, x0=None, iterations=2000, *, step=None, callback=None):
    """The proximal gradient method on the inner problem alone (η_k ≡ 0, no momentum).

        x^{k+1} = prox_{s g}( x^k − s∇f(x^k) ),   s = 1/L_f by default

    Not a bi-level method: it ignores ω. It is the limit of Bi-PG as its weight
    vanishes, and the non-accelerated control of :func:`fista_fixed_regularization`
    with η = 0: on a convex φ its inner gap is O(1/k), against FISTA's O(1/k²).
    """
    _check_problem(problem)
    iterations = check_count("iterations", iterations)
    return _regularized_proximal_gradient(
        "PG (inner only)",
        problem,
        x0,
        iterations,
        np.zeros(iterations),
        np.zeros(iterations),
        _step_size("step", step, 1.0 / problem.inner_lipschitz),
        callback,
    )


def bisg(problem, x0=None, iterations=2000, *, alpha=0.75, c=1.0, step=None, callback=None):
    """Bi-SG, the Bi-Sub-Gradient method (Merchav & Sabach, 2023).

        y^k     = prox_{s g}( x^k − s∇f(x^k) )        (s = 1/L_f by default)
        x^{k+1} = y^k − t_k ω'(y^k),   t_k = c·s/(k + 1)^α,   α ∈ (1/2, 1]

    with ω'(y) a subgradient of ω, so a non-smooth outer objective needs no
    prox. Known rates: inner O(1/k^α), outer O(1/k^{1−α}).
    """
    _check_problem(problem)
    iterations = check_count("iterations", iterations)
    alpha = check_real("alpha", alpha, 0.5, 1.0, open_lower=True)
    c = check_real("c", c, 0.0, open_lower=True)
    step = _step_size("step", step, 1.0 / problem.inner_lipschitz)
    outer_steps = c * step / np.arange(1, iterations + 1) ** alpha

    def update(k, x, x_previous):
        y = problem.prox(x - step * problem.inner_grad(x), step, 0.0)
        return y - outer_steps[k] * problem.outer_subgradient(y)

    return _run("Bi-SG", problem, x0, iterations, update, callback)


def bigsam(problem, x0=None, iterations=2000, *, c=2.0, step=None, outer_step=None, callback=None):
    """BiG-SAM, the Bi-level Gradient Sequential Averaging Method (Sabach & Shtern, 2017).

    For a smooth, strongly convex ω (no ω_n):

        y^{k+1} = prox_{s g}( x^k − s∇f(x^k) )
        z^{k+1} = x^k − t∇ω(x^k)
        x^{k+1} = β_{k+1} z^{k+1} + (1 − β_{k+1}) y^{k+1},   β_k = min(1, c/(k + 1))

    Standard conditions: s ∈ (0, 1/L_f] (default 1/L_f), t ∈ (0, 2/(L_ω + σ)]
    with σ the strong-convexity modulus of ω (default t = 1/L_ω), and β_k → 0
    with Σ β_k = ∞ and β_{k+1}/β_k → 1. Then x^k → x* and the inner rate is O(1/k).
    """
    _check_problem(problem)
    if not problem.outer_is_smooth or problem.outer_lipschitz <= 0:
        raise ValueError(
            f"problem must have a smooth outer objective (outer_is_smooth and "
            f"outer_lipschitz > 0) for BiG-SAM, got {problem.name!r}"
        )
    iterations = check_count("iterations", iterations)
    c = check_real("c", c, 0.0, open_lower=True)
    step = _step_size("step", step, 1.0 / problem.inner_lipschitz)
    outer_step = _step_size("outer_step", outer_step, 1.0 / problem.outer_lipschitz)
    averaging = np.minimum(1.0, c / np.arange(2, iterations + 2))  # β_1, …, β_K

    def update(k, x, x_previous):
        y = problem.prox(x - step * problem.inner_grad(x), step, 0.0)
        z = x - outer_step * problem.outer_smooth_grad(x)
        return averaging[k] * z + (1.0 - averaging[k]) * y

    return _run("BiG-SAM", problem, x0, iterations, update, callback)


@dataclass(frozen=True)
class GridRun:
    """One method run once per setting of a grid (see :func:`run_grid`).

    Attributes:
        method: the method's name.
        settings: the keyword arguments of each run, in the grid's order.
        traces: the trace of each run, in the same order.
    """

    method: str
    settings: tuple
    traces: tuple

    def best(self, score):
        """The (settings, trace) pair with the smallest ``score(trace)``; the first on ties."""
        if not callable(score):
            raise TypeError("score must be callable")
        scores = [float(score(trace)) for trace in self.traces]
        if any(math.isnan(value) for value in scores):
            raise ValueError("score returned NaN for some trace")
        index = int(np.argmin(scores))
        return self.settings[index], self.traces[index]


def product_grid(**axes):
    """The settings of a full grid: one dict per combination of the axes' values.

    ``product_grid(gamma=[1, 2], c=[1, 10])`` gives four dicts, the last axis
    varying fastest.
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes, dict)) or not isinstance(values, (list, tuple, np.ndarray)):
            raise TypeError(f"{name} must be a list of values, got {type(values).__name__}")
        if len(values) == 0:
            raise ValueError(f"{name} must hold at least one value")
    names = list(axes)
    return [dict(zip(names, combination)) for combination in itertools.product(*axes.values())]


def run_grid(method, problem, grid, **common):
    """Run ``method(problem, **common, **setting)`` for every setting of ``grid``.

    ``grid`` is a list of dicts of keyword arguments (for instance from
    :func:`product_grid`); the keyword arguments in ``common`` (such as
    ``iterations``) are shared by every run and may not appear in a setting.
    """
    if not callable(method):
        raise TypeError("method must be callable")
    grid = list(grid)
    if not grid or not all(isinstance(setting, dict) for setting in grid):
        raise ValueError("grid must be a non-empty list of dicts of keyword arguments")
    for setting in grid:
        shared = sorted(set(setting) & set(common))
        if shared:
            raise ValueError(f"grid settings may not repeat the common arguments {shared}")
    traces = tuple(method(problem, **common, **setting) for setting in grid)
    return GridRun(traces[0].method, tuple(dict(setting) for setting in grid), traces)
