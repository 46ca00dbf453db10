"""Input checks shared by the library: each error names the parameter and what is expected."""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_real(name, value, lower=-math.inf, upper=math.inf, *, open_lower=False):
    """Return ``value`` as a float after checking it is finite and in the range.

    The range is ``lower <= value <= upper``, or ``lower < value <= upper`` when
    ``open_lower`` is true. The error message names the parameter.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    above = value > lower if open_lower else value >= lower
    if not (math.isfinite(value) and above and value <= upper):
        raise ValueError(f"{name} must be a finite number{_describe_range(lower, upper, open_lower)}, got {value!r}")
    return value


def _describe_range(lower, upper, open_lower):
    """The range of ``check_real`` in words, e.g. ' > 0' or ' in (0.5, 1]'."""
    if math.isinf(lower) and math.isinf(upper):
        return ""
    if math.isinf(upper):
        return f" {'>' if open_lower else '>='} {lower:g}"
    if math.isinf(lower):
        return f" <= {upper:g}"
    return f" in {'(' if open_lower else '['}{lower:g}, {upper:g}]"


def check_count(name, value, minimum=1):
    """Return ``value`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def finite_array(name, value, shape=None):
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


def broadcastable(name, value, shape):
    """Return a finite array that broadcasts to ``shape`` (a scalar or an array)."""
    array = finite_array(name, value)
    try:
        np.broadcast_shapes(array.shape, shape)
    except ValueError as error:
        raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}, got {array.shape}") from error
    return array
