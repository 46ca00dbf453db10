"""Tables printed by the notebooks, in one fixed number format (nbval compares them exactly)."""

from __future__ import annotations

import math

import pandas as pd


def fixed_format(value: float) -> str:
    """Three decimals, or three significant digits in scientific notation for very small or large values."""
    if math.isnan(value):
        return "nan"
    return f"{value:.3e}" if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e3) else f"{value:.3f}"


def print_table(frame: pd.DataFrame, index: bool = True) -> None:
    """Print a data frame with every float in :func:`fixed_format`."""
    print(frame.to_string(index=index, float_format=fixed_format))
