"""Toy layers with correlated input features, small enough for the optimal 2:4 mask by exhaustive search.

The book's reconstruction of the paper's toy problems (whose exact setup is not
available): one linear layer whose Gaussian inputs have a random scale s_i ~ U(0.5, 2)
per feature and a correlation ``rho`` of one of three shapes (:data:`FAMILIES`):

* ``ar1``: correlation rho^|i - j|, so the most correlated features are neighbours and
  sit in the same group of four: the case most favourable to a 2:4 method that
  exploits correlations within a group;
* ``ar1-shuffled``: the same correlations with the features in a random order, so
  correlated features usually sit in different groups;
* ``factor``: every feature loads on two common factors, so features i and j have
  correlation rho cos(theta_ij), theta_ij the angle between their loadings: strong
  correlations of either sign between any pairs, none special to neighbours, as in
  activations dominated by a few directions.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from reprobook.checks import check_count, check_real
from reprobook.sparse.layerwise import calibration_hessian, check_hessian
from reprobook.sparse.structure import check_weight

#: The six ways to keep two of four entries.
PAIRS = tuple(itertools.combinations(range(4), 2))


#: The shapes of correlation of the toy inputs (see the module's docstring).
FAMILIES = ("ar1", "ar1-shuffled", "factor")


def ar1_covariance(in_features: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """The covariance rho^|i - j| s_i s_j of the toy inputs, with scales s_i ~ U(0.5, 2)."""
    lags = np.abs(np.subtract.outer(np.arange(in_features), np.arange(in_features)))
    scales = rng.uniform(0.5, 2.0, in_features)
    return rho**lags * np.outer(scales, scales)


def toy_covariance(family: str, in_features: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """The covariance of the toy inputs of one of :data:`FAMILIES`, with scales s_i ~ U(0.5, 2).

    ``factor``: correlation matrix (1 - rho) I + rho F F^T / 2 with the two columns of F of
    unit-variance Gaussian loadings normalized so that every feature has variance one.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if family != "factor":
        covariance = ar1_covariance(in_features, rho, rng)
        if family == "ar1-shuffled":
            order = rng.permutation(in_features)
            covariance = covariance[np.ix_(order, order)]
        return covariance
    loadings = rng.normal(size=(in_features, 2))
    loadings /= np.linalg.norm(loadings, axis=1, keepdims=True)
    correlation = (1 - rho) * np.eye(in_features) + rho * loadings @ loadings.T
    scales = rng.uniform(0.5, 2.0, in_features)
    return correlation * np.outer(scales, scales)


def correlated_layer(
    in_features: int = 16,
    out_features: int = 32,
    samples: int = 512,
    rho: float = 0.9,
    seed: int = 0,
    family: str = "ar1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight W0 ~ N(0, 1) of shape (out, in) and H = X^T X / n from correlated inputs X.

    The inputs' covariance is :func:`toy_covariance` of ``family``.
    """
    in_features = check_count("in_features", in_features, minimum=4)
    if in_features % 4:
        raise ValueError(f"in_features must be a multiple of 4, got {in_features}")
    out_features, samples = check_count("out_features", out_features), check_count("samples", samples)
    rho = check_real("rho", rho, 0.0, 0.999)
    rng = np.random.default_rng(seed)
    covariance = toy_covariance(family, in_features, rho, rng)
    X = rng.multivariate_normal(np.zeros(in_features), covariance, size=samples, method="cholesky")
    W0 = rng.normal(size=(out_features, in_features))
    return torch.from_numpy(W0), calibration_hessian(torch.from_numpy(X))


def all_masks(in_features: int) -> torch.Tensor:
    """Every 2:4 mask of one row with two weights kept per group: shape (6^(in/4), in), boolean."""
    rows = []
    for choice in itertools.product(PAIRS, repeat=in_features // 4):
        row = np.zeros(in_features, dtype=bool)
        for group, pair in enumerate(choice):
            row[[4 * group + i for i in pair]] = True
        rows.append(row)
    return torch.from_numpy(np.array(rows))


def optimal_24(original: torch.Tensor, hessian: torch.Tensor, max_in_features: int = 24) -> torch.Tensor:
    """The 2:4 weight of least local loss, by trying every mask of every row with its least-squares fit.

    A row's loss on a support S after the exact fit is 1/2 (w0^T H w0 - b_S^T H_SS^{-1} b_S)
    with b = H w0, so the best mask maximizes b_S^T H_SS^{-1} b_S. The cost grows as
    6^(in/4): ``in_features`` is limited to ``max_in_features``.
    """
    check_weight("original", original)
    check_hessian("hessian", hessian, original.shape[1])
    if original.shape[1] > max_in_features:
        raise ValueError(
            f"original has {original.shape[1]} input features; exhaustive search is limited to "
            f"max_in_features={max_in_features}"
        )
    masks = all_masks(original.shape[1])
    supports = torch.nonzero(masks)[:, 1].view(masks.shape[0], -1)
    H = hessian.to(torch.float64)
    H_ss = H[supports[:, :, None], supports[:, None, :]]
    result = torch.zeros_like(original, dtype=torch.float64)
    for r, w0 in enumerate(original.to(torch.float64)):
        b_s = (H @ w0)[supports]
        fitted = torch.linalg.solve(H_ss, b_s.unsqueeze(-1)).squeeze(-1)
        best = int(torch.argmax((b_s * fitted).sum(-1)))
        result[r, supports[best]] = fitted[best]
    return result.to(original.dtype)
