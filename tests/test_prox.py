"""Proximal operators: closed forms, brute force, and the properties every prox has."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize_scalar

from reprobook.optim import (
    project_box,
    prox_box_plus_squared,
    prox_l1,
    prox_squared_distance,
    soft_threshold,
)

SIZE = 6
vectors = arrays(np.float64, SIZE, elements=st.floats(-100, 100))
steps = st.floats(0.0, 10.0)


def brute_force_prox(h, v, step, bounds=None):
    """argmin_x step·h_i(x) + ½(x − v_i)², coordinate by coordinate (the operators are separable)."""
    result = []
    for i, v_i in enumerate(v):
        interval = bounds(i) if bounds else (v_i - 100.0, v_i + 100.0)
        best = minimize_scalar(
            lambda x: step * h(i, x) + 0.5 * (x - v_i) ** 2, bounds=interval, method="bounded", options={"xatol": 1e-11}
        )
        result.append(best.x)
    return np.array(result)


RNG = np.random.default_rng(0)
V = RNG.normal(scale=3.0, size=SIZE)
CENTER = RNG.normal(size=SIZE)
LOWER = -RNG.uniform(0.1, 2.0, size=SIZE)
UPPER = RNG.uniform(0.1, 2.0, size=SIZE)


def test_soft_threshold_closed_form():
    np.testing.assert_array_equal(soft_threshold([-3.0, -0.5, 0.0, 0.5, 3.0], 1.0), [-2.0, 0.0, 0.0, 0.0, 2.0])


def test_prox_l1_closed_form_and_brute_force():
    # ‖x − c‖₁ with step 0.7 at v = c + (2, −0.3, ...): shifts by 0.7 or lands on c.
    np.testing.assert_allclose(prox_l1([3.0, 0.7, 1.0], 0.7, center=1.0), [2.3, 1.0, 1.0])
    expected = brute_force_prox(lambda i, x: abs(x - CENTER[i]), V, 0.7)
    np.testing.assert_allclose(prox_l1(V, 0.7, CENTER), expected, atol=1e-7)
    np.testing.assert_allclose(prox_l1(V, 0.7), brute_force_prox(lambda i, x: abs(x), V, 0.7), atol=1e-7)


def test_prox_squared_distance_closed_form_and_brute_force():
    np.testing.assert_allclose(prox_squared_distance([4.0], 1.0, 0.0), [2.0])
    expected = brute_force_prox(lambda i, x: 0.5 * (x - CENTER[i]) ** 2, V, 1.3)
    np.testing.assert_allclose(prox_squared_distance(V, 1.3, CENTER), expected, atol=1e-7)


def test_project_box_closed_form_and_brute_force():
    np.testing.assert_array_equal(project_box([-5.0, 0.5, 5.0], -1.0, 1.0), [-1.0, 0.5, 1.0])
    expected = brute_force_prox(lambda i, x: 0.0, V, 1.0, bounds=lambda i: (LOWER[i], UPPER[i]))
    np.testing.assert_allclose(project_box(V, LOWER, UPPER), expected, atol=1e-7)


def test_prox_box_plus_squared_closed_form_and_brute_force():
    # v / (1 + s·η) = 6 / 3 = 2, then clipped to [−1, 1].
    np.testing.assert_allclose(prox_box_plus_squared([6.0, 0.9], 1.0, 2.0, -1.0, 1.0), [1.0, 0.3])
    expected = brute_force_prox(lambda i, x: 0.5 * 0.8 * x**2, V, 1.5, bounds=lambda i: (LOWER[i], UPPER[i]))
    np.testing.assert_allclose(prox_box_plus_squared(V, 1.5, 0.8, LOWER, UPPER), expected, atol=1e-7)


def test_step_zero_is_the_identity():
    for operator in (
        lambda v: prox_l1(v, 0.0, CENTER),
        lambda v: prox_squared_distance(v, 0.0, CENTER),
        lambda v: soft_threshold(v, 0.0),
    ):
        np.testing.assert_array_equal(operator(V), V)


def firmly_nonexpansive(p_u, p_v, u, v):
    difference = p_u - p_v
    return difference @ difference <= difference @ (u - v) + 1e-9 * (1.0 + np.abs(u - v).sum() ** 2)


@settings(max_examples=60, deadline=None)
@given(u=vectors, v=vectors, step=steps, eta=steps)
def test_every_prox_is_firmly_nonexpansive(u, v, step, eta):
    operators = [
        lambda x: soft_threshold(x, step),
        lambda x: prox_l1(x, step, CENTER),
        lambda x: prox_squared_distance(x, step, CENTER),
        lambda x: project_box(x, LOWER, UPPER),
        lambda x: prox_box_plus_squared(x, step, eta, LOWER, UPPER),
    ]
    for operator in operators:
        assert firmly_nonexpansive(operator(u), operator(v), u, v)


@settings(max_examples=60, deadline=None)
@given(v=vectors, step=st.floats(0.01, 10.0))
def test_moreau_identity_for_l1(v, step):
    # v = prox_{s‖·‖₁}(v) + s·prox_{‖·‖₁^*/s}(v/s), and ‖·‖₁^* is the indicator of the ℓ∞ unit ball.
    np.testing.assert_allclose(prox_l1(v, step) + step * project_box(v / step, -1.0, 1.0), v, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(v=vectors, step=steps, eta=steps)
def test_scaled_box_projection_stays_in_the_box(v, step, eta):
    p = prox_box_plus_squared(v, step, eta, LOWER, UPPER)
    assert np.all((LOWER <= p) & (p <= UPPER))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: soft_threshold(V, -1.0), "threshold must be a finite number >= 0"),
        (lambda: soft_threshold([1.0, np.nan], 1.0), "v must contain only finite numbers"),
        (lambda: prox_l1(V, np.inf), "step"),
        (lambda: prox_l1(V, 1.0, center=np.ones(3)), "center"),
        (lambda: prox_squared_distance(V, -0.1, 0.0), "step"),
        (lambda: project_box(V, 1.0, -1.0), "lower must be <= upper"),
        (lambda: project_box(V, np.zeros(2), 1.0), "lower"),
        (lambda: prox_box_plus_squared(V, 1.0, -2.0, -1.0, 1.0), "eta"),
    ],
)
def test_prox_rejects_bad_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_prox_rejects_bad_types():
    with pytest.raises(TypeError, match="step must be a real number"):
        prox_l1(V, "1.0")
    with pytest.raises(TypeError, match="threshold"):
        soft_threshold(V, True)
    with pytest.raises(TypeError, match="v must be an array"):
        soft_threshold(object(), 1.0)
