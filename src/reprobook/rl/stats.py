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

from reprobook.bootstrap import percentile_interval


def iqm(scores, axis: int = -1) -> np.ndarray:
    """The interquartile mean: the mean after cutting a quarter of the scores at each end."""
    return stats.trim_mean(scores, 0.25, axis=axis)


def iqm_interval(scores, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the IQM of ``scores`` (one score per seed)."""
    return percentile_interval((_per_seed("scores", scores),), iqm, confidence, resamples, seed)


def iqm_difference_interval(
    scores, baseline, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap interval of ``IQM(scores) - IQM(baseline)``, two independent sets of seeds."""
    samples = (_per_seed("scores", scores), _per_seed("baseline", baseline))
    return percentile_interval(samples, lambda a, b, axis=-1: iqm(a, axis) - iqm(b, axis), confidence, resamples, seed)


def _per_seed(name: str, scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or len(scores) < 2:
        raise ValueError(f"{name} must hold one score per seed, at least 2, got shape {scores.shape}")
    return scores
