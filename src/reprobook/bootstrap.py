"""Percentile bootstrap intervals over runs or seeds, with a fixed seed: the same interval on every machine."""

from __future__ import annotations

import numpy as np

from reprobook.checks import check_count, check_real


def percentile_interval(
    samples: tuple[np.ndarray, ...], statistic, confidence: float = 0.95, resamples: int = 9999, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic`` over independent ``samples`` (``scipy.stats.bootstrap``).

    ``statistic`` takes one array per sample and an ``axis`` keyword (vectorized).
    """
    from scipy import stats

    check_real("confidence", confidence, 0.0, 1.0, open_lower=True)
    check_count("resamples", resamples)
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
