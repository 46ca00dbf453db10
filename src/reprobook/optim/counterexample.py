"""The online problem on which Adam fails to converge (Reddi, Kale and Kumar 2018, §3).

On x ∈ [−1, 1] the losses are linear, f_t(x) = 1010 x when t mod 101 = 1 and −10 x otherwise.
Over a period their sum is 10 x, so the best fixed point is x* = −1; but the rare large
gradient is forgotten by Adam's moving average of g², and Adam drifts to x = +1. AMSGrad keeps
the largest v and AVGrad its time average, and both converge to −1. MADA starts at the Adam
point and learns its way towards AVGrad by lowering ρ (Ozkara et al. 2024, their Figure with
this problem).

The gradients do not depend on x (the losses are linear), so at a fixed point κ with c = 1
(Adam, AVGrad) and for AMSGrad the moments are linear filters of the gradient sequence and
every update Δ_t is computed at once, vectorized; only the projection is a loop. MADA learning
its coefficients (or a Yogi point, c < 1) runs as a scalar loop in plain Python floats, with
its hypergradient written out analytically: the derivative of the update Δ_t of
:func:`reprobook.optim.mada.mada_direction` with respect to each coefficient, by the chain
rule through ĝ, g̃², m, v, n, the bias corrections and v̂. Either way 10^6 steps take seconds.
The tests check these runs step by step against the ``torch`` optimizers
(:class:`~reprobook.optim.mada.MADA` with the projection onto [−1, 1] inactive,
``torch.optim.Adam`` with ``amsgrad=True``), and the two paths against each other. The projection's
derivative is 0 at a step that ends clipped, so no hypergradient flows through it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from reprobook.optim.mada import BOXES, COEFFICIENTS, LION_BETAS

PERIOD = 101
LARGE_GRADIENT = 1010.0
SMALL_GRADIENT = -10.0


def gradient(step: int) -> float:
    """f_t'(x): 1010 at steps t with t mod 101 = 1, else −10 (steps count from 1)."""
    return LARGE_GRADIENT if step % PERIOD == 1 else SMALL_GRADIENT


def gradients(steps: int) -> np.ndarray:
    """The gradients f_t'(x) of steps t = 1, ..., ``steps``, as an array."""
    t = np.arange(1, steps + 1)
    return np.where(t % PERIOD == 1, LARGE_GRADIENT, SMALL_GRADIENT)


@dataclass
class OnlineRun:
    """A run, recorded every ``record_every`` steps: the iterate, the average regret, the coefficients."""

    steps: np.ndarray
    x: np.ndarray
    average_regret: np.ndarray
    coefficients: dict[str, np.ndarray]

    def first_step_at(self, target: float, tolerance: float = 1e-9) -> int | None:
        """The first recorded step whose iterate is within ``tolerance`` of ``target``, or None."""
        hits = np.flatnonzero(np.abs(self.x - target) <= tolerance)
        return int(self.steps[hits[0]]) if hits.size else None


def _check_run_arguments(steps: int, lr: float, record_every: int, x0: float) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or not 1 <= record_every <= steps:
        raise ValueError(f"record_every must be an integer in [1, steps], got {record_every!r}")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if not (isinstance(x0, int | float) and -1.0 <= x0 <= 1.0):
        raise ValueError(f"x0 must lie in [-1, 1], got {x0!r}")


def _sign(value: float) -> float:
    return float((value > 0) - (value < 0))


def run_mada(
    steps: int,
    lr: float,
    kappa: Mapping[str, float],
    hyper_lr: Mapping[str, float] | None = None,
    hyper_momentum: Mapping[str, float] | None = None,
    eps: float = 1e-8,
    initial_v: float = 0.0,
    n_starts_at_grad_squared: bool = False,
    x0: float = 0.0,
    record_every: int = 1000,
) -> OnlineRun:
    """MADA on the counterexample; with ``hyper_lr`` empty, a fixed point κ (Adam, AVGrad, ...).

    A fixed point with c = 1 is computed vectorized (:func:`fixed_point_directions`), any
    other run by the scalar loop.

    The hyper-optimizer is SGD with momentum per coefficient, as ``torch.optim.SGD``; no
    hypergradient clipping (as in the paper's run of this problem). ε is outside the root;
    Lion's u uses the updated momentum (the official code's choices).
    """
    _check_run_arguments(steps, lr, record_every, x0)
    k = [float(kappa[name]) for name in COEFFICIENTS]
    rates = [float((hyper_lr or {}).get(name, 0.0)) for name in COEFFICIENTS]
    momenta = [float((hyper_momentum or {}).get(name, 0.0)) for name in COEFFICIENTS]
    if max(rates) <= 0 and k[COEFFICIENTS.index("c")] == 1.0:
        point = dict(zip(COEFFICIENTS, k))
        directions = fixed_point_directions(steps, point, eps, initial_v, n_starts_at_grad_squared)
        return _projected_run(lr * directions, x0, record_every, point)
    return _scalar_run(steps, lr, k, rates, momenta, eps, initial_v, n_starts_at_grad_squared, x0, record_every)


def _moving_average(beta: float, values: np.ndarray, start: float = 0.0) -> np.ndarray:
    """y_t = β y_{t−1} + (1 − β) x_t from y_0 = ``start``, for every t at once (a linear filter)."""
    from scipy.signal import lfilter  # imported where used: scipy.signal takes most of a second

    filtered, _ = lfilter([1.0 - beta], [1.0, -beta], values, zi=[beta * start])
    return filtered


def fixed_point_directions(
    steps: int,
    kappa: Mapping[str, float],
    eps: float = 1e-8,
    initial_v: float = 0.0,
    n_starts_at_grad_squared: bool = False,
) -> np.ndarray:
    """MADA's updates Δ_1, ..., Δ_T at a fixed point κ with c = 1, vectorized over the steps.

    With c = 1 every moment is a linear filter of the gradients: m of g, v of ĝ² (ĝ = g + β3
    (g_t − g_{t−1})), n of g_t − g_{t−1}, Lion's u of g, and v̄_t = (v_1 + ... + v_t)/t; the
    update is the one of :func:`reprobook.optim.mada.mada_direction`, with ε outside the root.
    """
    b1, b2, b3, rho, c, gamma = (float(kappa[name]) for name in COEFFICIENTS)
    if c != 1.0:
        raise ValueError(f"the vectorized updates need c = 1 (a linear second moment), got c={c!r}")
    g = gradients(steps)
    t = np.arange(1, steps + 1, dtype=float)
    d = np.diff(g, prepend=0.0)
    m = _moving_average(b1, g)
    v = _moving_average(b2, (g + b3 * d) ** 2, initial_v)
    n = _moving_average(b3, d, g[0] ** 2 if n_starts_at_grad_squared else 0.0)
    v_mean = np.cumsum(v) / t
    lion_beta1, lion_beta2 = LION_BETAS
    lion_sign = np.sign(lion_beta1 * _moving_average(lion_beta2, g) + (1 - lion_beta1) * g)
    root = np.sqrt((rho * v + (1 - rho) * v_mean) / (1 - b2**t))
    return gamma * (m / (1 - b1**t) + b3 * n) / (root + eps) + (1 - gamma) * lion_sign


def _projected_run(updates: np.ndarray, x0: float, record_every: int, kappa: Mapping[str, float]) -> OnlineRun:
    """The run x_t = Π_[−1,1](x_{t−1} − u_t) for given updates u_t (lr Δ_t), with its regret."""
    path = np.fromiter(
        itertools.accumulate(updates.tolist(), lambda x, u: min(max(x - u, -1.0), 1.0), initial=x0),
        dtype=float,
        count=updates.size + 1,
    )
    regret = np.cumsum(gradients(updates.size) * (path[:-1] + 1.0))  # Σ f_t(x_t) − f_t(−1)
    recorded = np.arange(record_every, updates.size + 1, record_every)
    return OnlineRun(
        steps=recorded,
        x=path[recorded],
        average_regret=regret[recorded - 1] / recorded,
        coefficients={name: np.full(recorded.size, float(kappa[name])) for name in COEFFICIENTS},
    )


def _scalar_run(
    steps: int,
    lr: float,
    k: list[float],
    rates: list[float],
    momenta: list[float],
    eps: float,
    initial_v: float,
    n_starts_at_grad_squared: bool,
    x0: float,
    record_every: int,
) -> OnlineRun:
    """MADA as a scalar loop, with the hyper-steps of the coefficients whose rate is positive."""
    boxes = [BOXES[name] for name in COEFFICIENTS]
    learned = [i for i, rate in enumerate(rates) if rate > 0]
    buffers: list[float | None] = [None] * 6
    sensitivity = [0.0] * 6  # ∂x_t/∂κ through the last update only
    x, m, v, v_mean, n, previous_g, lion_m = x0, 0.0, initial_v, initial_v, None, 0.0, 0.0
    lion_beta1, lion_beta2 = LION_BETAS
    regret = 0.0
    records: dict[str, list[float]] = {"steps": [], "x": [], "regret": [], **{name: [] for name in COEFFICIENTS}}
    for t in range(1, steps + 1):
        g = gradient(t)
        regret += g * (x + 1.0)  # f_t(x_t) − f_t(−1)
        if t > 1:
            for i in learned:  # the hyper-step: SGD with momentum on the hypergradient g_t ∂x_{t−1}/∂κ
                h = g * sensitivity[i]
                buffers[i] = h if buffers[i] is None else momenta[i] * buffers[i] + h
                k[i] = min(max(k[i] - rates[i] * buffers[i], boxes[i][0]), boxes[i][1])
        b1, b2, b3, rho, c, gamma = k
        if n is None:
            n = g * g if n_starts_at_grad_squared else 0.0
        d = g - previous_g
        look = g + b3 * d
        look_sq = look * look
        s = _sign(look_sq - v)
        second = c * look_sq + (1 - c) * (v + look_sq * s)
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * second
        n_new = b3 * n + (1 - b3) * d
        v_mean = (v_new + (t - 1) * v_mean) / t
        lion_m = lion_beta2 * lion_m + (1 - lion_beta2) * g
        lion_sign = _sign(lion_beta1 * lion_m + (1 - lion_beta1) * g)
        bias1, bias2 = 1 - b1**t, 1 - b2**t
        mixed = rho * v_new + (1 - rho) * v_mean  # v̂ = mixed / bias2
        root = math.sqrt(mixed / bias2)
        numerator = m_new / bias1 + b3 * n_new
        denominator = root + eps
        ratio = numerator / denominator
        delta = gamma * ratio + (1 - gamma) * lion_sign
        if learned:
            # ∂Δ/∂κ by the chain rule: the numerator m̂ + β3 n depends on (β1, β3), the
            # denominator through v̂ on (β2, β3, ρ, c), and γ mixes the ratio with sign(u)
            d_numerator = (
                (m - g) / bias1 + m_new * t * b1 ** (t - 1) / bias1**2,
                0.0,
                n_new + b3 * (n - d),
            )
            d_second_d_b3 = (c + (1 - c) * s) * 2 * look * d
            d_mixed = (
                0.0,
                rho * (v - second) + mixed * t * b2 ** (t - 1) / bias2,
                rho * (1 - b2) * d_second_d_b3,
                v_new - v_mean,
                rho * (1 - b2) * (look_sq - v - look_sq * s),
            )
            d_root = 0.5 / (root * bias2) if root > 0 else 0.0  # ∂√(mixed/bias2)/∂mixed
            for i in learned:
                if i == 5:
                    d_delta = ratio - lion_sign
                else:
                    d_top = d_numerator[i] if i < 3 else 0.0
                    d_delta = gamma * (d_top - ratio * d_root * d_mixed[i]) / denominator
                sensitivity[i] = -lr * d_delta
        m, v, n, previous_g = m_new, v_new, n_new, g
        x_new = x - lr * delta
        x = min(max(x_new, -1.0), 1.0)
        if x != x_new:  # the projection is active: its derivative is 0
            sensitivity = [0.0] * 6
        if t % record_every == 0:
            _record(records, t, x, regret, dict(zip(COEFFICIENTS, k)))
    return _finish(records)


def run_amsgrad(
    steps: int, lr: float, betas=(0.9, 0.99), eps: float = 1e-8, x0: float = 0.0, record_every: int = 1000
) -> OnlineRun:
    """AMSGrad on the counterexample, as ``torch.optim.Adam(amsgrad=True)``: the maximum of the raw v."""
    _check_run_arguments(steps, lr, record_every, x0)
    beta1, beta2 = betas
    g = gradients(steps)
    t = np.arange(1, steps + 1, dtype=float)
    m = _moving_average(beta1, g)
    v_max = np.maximum.accumulate(_moving_average(beta2, g * g))
    updates = lr / (1 - beta1**t) * m / (np.sqrt(v_max) / np.sqrt(1 - beta2**t) + eps)
    point = {"beta1": beta1, "beta2": beta2, "beta3": 0.0, "rho": 1.0, "c": 1.0, "gamma": 1.0}
    return _projected_run(updates, x0, record_every, point)


def _record(records: dict[str, list[float]], t: int, x: float, regret: float, kappa: Mapping[str, float]) -> None:
    records["steps"].append(t)
    records["x"].append(x)
    records["regret"].append(regret / t)
    for name in COEFFICIENTS:
        records[name].append(kappa[name])


def _finish(records: dict[str, list[float]]) -> OnlineRun:
    return OnlineRun(
        steps=np.asarray(records["steps"]),
        x=np.asarray(records["x"]),
        average_regret=np.asarray(records["regret"]),
        coefficients={name: np.asarray(records[name]) for name in COEFFICIENTS},
    )
