"""Statistics across seeds: the interquartile mean (IQM) and its bootstrap confidence interval.

Agarwal et al. (2021) recommend the IQM with stratified bootstrap intervals over a handful of
seeds; their package ``rliable`` 1.2.0 requires ``arch < 8``, and ``arch`` 7.2 fails to import
beside pandas 3, so the two statistics come from SciPy here: ``scipy.stats.trim_mean`` (the
IQM is the mean of the middle half) and ``scipy.stats.bootstrap`` (percentile intervals over
seeds, one game at a time).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from reprobook.checks import check_count, check_real


def iqm(scores, axis: int = -1) -> np.ndarray:
    """The interquartile mean: the mean after cutting a quarter of the scores at each end."""
    return stats.trim_mean(scores, 0.25, axis=axis)


def iqm_interval(scores, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the IQM of ``scores`` (one score per seed)."""
    return _bootstrap((_per_seed("scores", scores),), iqm, confidence, resamples, seed)


def iqm_difference_interval(
    scores, baseline, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap interval of ``IQM(scores) - IQM(baseline)``, two independent sets of seeds."""
    samples = (_per_seed("scores", scores), _per_seed("baseline", baseline))
    return _bootstrap(samples, lambda a, b, axis=-1: iqm(a, axis) - iqm(b, axis), confidence, resamples, seed)


def _per_seed(name: str, scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or len(scores) < 2:
        raise ValueError(f"{name} must hold one score per seed, at least 2, got shape {scores.shape}")
    return scores


def _bootstrap(samples, statistic, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
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
