"""The log-determinant and its low-rank updates, shared by the Frank-Wolfe designs and greedy selection.

Both grow an information matrix V by low-rank pieces B Bᵀ: Frank-Wolfe mixes,
V ← (1 - η) V + η B Bᵀ, and greedy selection adds, V ← V + B Bᵀ. The Woodbury identity
updates V⁻¹ in O(d² r) for a rank-r piece, and the matrix determinant lemma gives the
change of log det V as a small r×r determinant.
"""

from __future__ import annotations

import numpy as np


def log_det(matrix: np.ndarray) -> float:
    """log det of a symmetric positive definite matrix; raises if it is not positive definite."""
    sign, value = np.linalg.slogdet(matrix)
    if sign <= 0:
        raise np.linalg.LinAlgError("the information matrix is not positive definite")
    return float(value)


def woodbury(inverse: np.ndarray, factor: np.ndarray, keep: float = 1.0, add: float = 1.0):
    """(keep V + add B Bᵀ)⁻¹ from V⁻¹ and B (d×r), by the Woodbury identity, in O(d² r).

    (keep V + add B Bᵀ)⁻¹ = keep⁻¹ [V⁻¹ - V⁻¹B C BᵀV⁻¹] with C = (keep/add I + BᵀV⁻¹B)⁻¹.
    Returns the new inverse, V⁻¹B and C, from which callers update products they memoize
    (X V⁻¹ Xᵀ ← keep⁻¹ [X V⁻¹ Xᵀ - W C Wᵀ] with W = X V⁻¹ B).
    """
    projected = inverse @ factor
    core = np.linalg.inv(keep / add * np.eye(factor.shape[1]) + factor.T @ projected)
    core = (core + core.T) / 2
    return (inverse - projected @ core @ projected.T) / keep, projected, core


def determinant_lemma_gains(inverse: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """log det(V + X_iᵀX_i) - log det V = log det(I + X_i V⁻¹ X_iᵀ) for every block X_i of ``blocks`` (n, M, d)."""
    small = blocks @ inverse @ blocks.transpose(0, 2, 1)
    small += np.eye(blocks.shape[1])
    sign, value = np.linalg.slogdet(small)
    if np.any(sign <= 0):
        raise np.linalg.LinAlgError("a gain's matrix is not positive definite")
    return value
