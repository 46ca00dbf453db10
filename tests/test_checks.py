"""The library's shared input checks."""

from __future__ import annotations

import numpy as np
import pytest

from reprobook.checks import broadcastable, check_count, check_real, finite_array


def test_check_real_accepts_the_range_and_names_the_parameter():
    assert check_real("step", 1) == 1.0
    assert check_real("alpha", 1.0, 0.5, 1.0, open_lower=True) == 1.0
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0.5, 1\], got 0.5"):
        check_real("alpha", 0.5, 0.5, 1.0, open_lower=True)
    with pytest.raises(ValueError, match="step must be a finite number > 0, got nan"):
        check_real("step", float("nan"), 0.0, open_lower=True)
    with pytest.raises(TypeError, match="eta must be a real number, got bool"):
        check_real("eta", True)


def test_check_count_rejects_non_integers_and_small_values():
    assert check_count("iterations", np.int64(3)) == 3
    with pytest.raises(TypeError, match="iterations must be an integer, got float"):
        check_count("iterations", 3.0)
    with pytest.raises(ValueError, match="iterations must be an integer >= 1, got 0"):
        check_count("iterations", 0)


def test_finite_array_checks_shape_and_values():
    assert finite_array("x0", [1, 2]).dtype == np.float64
    with pytest.raises(ValueError, match=r"x0 must have shape \(3,\), got \(2,\)"):
        finite_array("x0", [1, 2], (3,))
    with pytest.raises(ValueError, match="x0 must contain only finite numbers"):
        finite_array("x0", [1, np.inf])
    with pytest.raises(TypeError, match="x0 must be an array of real numbers"):
        finite_array("x0", ["a"])
    with pytest.raises(ValueError, match="lower must be a scalar or broadcast to shape"):
        broadcastable("lower", np.zeros(2), (3,))
