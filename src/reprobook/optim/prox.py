"""Proximal operators of the simple functions used by the bi-level methods.

The proximal operator of a convex function h with step s > 0 is

    prox_{s h}(v) = argmin_x  s h(x) + ½‖x − v‖².

Every operator below is separable (it acts coordinate by coordinate) and has a
closed form, so one call costs O(d). Step 0 is allowed and gives the identity,
the limit of prox_{s h} as s → 0.
"""

from __future__ import annotations

import numpy as np

from reprobook.checks import broadcastable, check_real, finite_array


def soft_threshold(v, threshold):
    """Soft-thresholding: the prox of threshold·‖·‖₁.

    S_τ(v)_i = sign(v_i) · max(|v_i| − τ, 0).
    """
    v = finite_array("v", v)
    threshold = check_real("threshold", threshold, 0.0)
    return np.sign(v) * np.maximum(np.abs(v) - threshold, 0.0)


def prox_l1(v, step, center=None):
    """Prox of the tilted ℓ1 norm h(x) = ‖x − c‖₁.

    prox_{s h}(v) = c + S_s(v − c), with S the soft-thresholding; c = 0 when
    ``center`` is None.
    """
    v = finite_array("v", v)
    step = check_real("step", step, 0.0)
    if center is None:
        return soft_threshold(v, step)
    center = broadcastable("center", center, v.shape)
    return center + soft_threshold(v - center, step)


def prox_squared_distance(v, step, center):
    """Prox of h(x) = ½‖x − c‖².

    prox_{s h}(v) = (v + s c) / (1 + s).
    """
    v = finite_array("v", v)
    step = check_real("step", step, 0.0)
    center = broadcastable("center", center, v.shape)
    return (v + step * center) / (1.0 + step)


def project_box(v, lower, upper):
    """Projection onto the box {x : lower ≤ x ≤ upper} (the prox of its indicator).

    P(v)_i = min(max(v_i, lower_i), upper_i).
    """
    v = finite_array("v", v)
    lower = broadcastable("lower", lower, v.shape)
    upper = broadcastable("upper", upper, v.shape)
    if np.any(lower > upper):
        raise ValueError("lower must be <= upper in every coordinate")
    return np.clip(v, lower, upper)


def prox_box_plus_squared(v, step, eta, lower, upper):
    """Prox of h(x) = indicator_box(x) + (η/2)‖x‖²: a scaled box projection.

    prox_{s h}(v) = P_box(v / (1 + s η)). The quadratic shrinks v towards 0 and
    the box clips the result, since both act coordinate by coordinate and the
    one-dimensional objective is a convex parabola restricted to an interval.
    """
    step = check_real("step", step, 0.0)
    eta = check_real("eta", eta, 0.0)
    return project_box(finite_array("v", v) / (1.0 + step * eta), lower, upper)
