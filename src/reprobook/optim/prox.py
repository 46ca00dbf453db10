"""Proximal operators of the simple functions used by the bi-level methods.

The proximal operator of a convex function h with step s > 0 is

    prox_{s h}(v) = argmin_x  s h(x) + ½‖x − v‖².

Every operator below is separable (it acts coordinate by coordinate) and has a
closed form, so one call costs O(d). Step 0 is allowed and gives the identity,
the limit of prox_{s h} as s → 0.

The module also holds the small input checks shared by the ``optim`` modules.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _check_real(name, value, lower=-math.inf, upper=math.inf, *, open_lower=False):
    """Return ``value`` as a float after checking it is finite and in the range.

    The range is ``lower <= value <= upper``, or ``lower < value <= upper`` when
    ``open_lower`` is true. The error message names the parameter.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    above = value > lower if open_lower else value >= lower
    if not (math.isfinite(value) and above and value <= upper):
        raise ValueError(
            f"{name} must be a finite number{_describe_range(lower, upper, open_lower)}, got {value!r}"
        )
    return value


def _describe_range(lower, upper, open_lower):
    """The range of ``_check_real`` in words, e.g. ' > 0' or ' in (0.5, 1]'."""
    if math.isinf(lower) and math.isinf(upper):
        return ""
    if math.isinf(upper):
        return f" {'>' if open_lower else '>='} {lower:g}"
    if math.isinf(lower):
        return f" <= {upper:g}"
    return f" in {'(' if open_lower else '['}{lower:g}, {upper:g}]"


def _check_count(name, value, minimum=1):
    """Return ``value`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _finite_array(name, value, shape=None):
    """Return ``value`` as a float64 array after checking finiteness and shape."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}") from error
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers")
    return array


def _broadcastable(name, value, shape):
    """Return a finite array that broadcasts to ``shape`` (a scalar or an array)."""
    array = _finite_array(name, value)
    try:
        np.broadcast_shapes(array.shape, shape)
    except ValueError as error:
        raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}, got {array.shape}") from error
    return array


def soft_threshold(v, threshold):
    """Soft-thresholding: the prox of threshold·‖·‖₁.

    S_τ(v)_i = sign(v_i) · max(|v_i| − τ, 0).
    """
    v = _finite_array("v", v)
    threshold = _check_real("threshold", threshold, 0.0)
    return np.sign(v) * np.maximum(np.abs(v) - threshold, 0.0)


def prox_l1(v, step, center=None):
    """Prox of the tilted ℓ1 norm h(x) = ‖x − c‖₁.

    prox_{s h}(v) = c + S_s(v − c), with S the soft-thresholding; c = 0 when
    ``center`` is None.
    """
    v = _finite_array("v", v)
    step = _check_real("step", step, 0.0)
    if center is None:
        return soft_threshold(v, step)
    center = _broadcastable("center", center, v.shape)
    return center + soft_threshold(v - center, step)


def prox_squared_distance(v, step, center):
    """Prox of h(x) = ½‖x − c‖².

    prox_{s h}(v) = (v + s c) / (1 + s).
    """
    v = _finite_array("v", v)
    step = _check_real("step", step, 0.0)
    center = _broadcastable("center", center, v.shape)
    return (v + step * center) / (1.0 + step)


def project_box(v, lower, upper):
    """Projection onto the box {x : lower ≤ x ≤ upper} (the prox of its indicator).

    P(v)_i = min(max(v_i, lower_i), upper_i).
    """
    v = _finite_array("v", v)
    lower = _broadcastable("lower", lower, v.shape)
    upper = _broadcastable("upper", upper, v.shape)
    if np.any(lower > upper):
        raise ValueError("lower must be <= upper in every coordinate")
    return np.clip(v, lower, upper)


def prox_box_plus_squared(v, step, eta, lower, upper):
    """Prox of h(x) = indicator_box(x) + (η/2)‖x‖²: a scaled box projection.

    prox_{s h}(v) = P_box(v / (1 + s η)). The quadratic shrinks v towards 0 and
    the box clips the result, since both act coordinate by coordinate and the
    one-dimensional objective is a convex parabola restricted to an interval.
    """
    step = _check_real("step", step, 0.0)
    eta = _check_real("eta", eta, 0.0)
    return project_box(_finite_array("v", v) / (1.0 + step * eta), lower, upper)
