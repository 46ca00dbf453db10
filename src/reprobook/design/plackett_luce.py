"""The Plackett-Luce model of rankings of a K-subset, with item features.

A query shows a list of K items with features ``z_1..z_K`` (rows of a ``(K, d)`` array);
the answer is a full ranking σ, best first. Under a parameter θ,

    P(σ | z; θ) = Π_{k=1..K} exp(z_{σ(k)}ᵀθ) / Σ_{j=k..K} exp(z_{σ(j)}ᵀθ),

the ranking model of the DopeWolfe paper (arXiv:2412.19396, Section 2) and of Dope
(arXiv:2404.13895). A batch of ``n`` queries is an array ``lists`` of shape ``(n, K, d)``
and their answers ``rankings`` of shape ``(n, K)``: positions ``0..K-1`` in the list,
best first. Every function is vectorized over the batch.

Stage k of a ranking chooses among the items not yet placed, with the softmax
probabilities ``p_k``. The log-likelihood's Hessian is minus the sum over stages of the
covariance of the features under ``p_k``; written over pairs, a stage contributes
``½ Σ_{j,j'} p_kj p_kj' (z_j - z_j')(z_j - z_j')ᵀ``. Bounding every probability from
below leaves the θ-free **design matrix** of the list (:func:`design_matrices`),

    A = Σ_{j<j'} (z_j - z_j')(z_j - z_j')ᵀ = K Σ_j (z_j - z̄)(z_j - z̄)ᵀ,

K times the scatter matrix of the list, of rank at most K - 1.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from reprobook.checks import check_count, check_real, finite_array

MAX_ENUMERATED_K = 8


def check_lists(lists) -> np.ndarray:
    """Return ``lists`` as a finite float64 array of shape ``(n, K, d)`` with K >= 2."""
    array = finite_array("lists", lists)
    if array.ndim != 3:
        raise ValueError(f"lists must have shape (n, K, d): n queries of K items with d features, got {array.shape}")
    if array.shape[1] < 2:
        raise ValueError(f"lists must hold K >= 2 items per query (shape[1]), got K = {array.shape[1]}")
    return array


def check_theta(name: str, theta, d: int) -> np.ndarray:
    """Return ``theta`` as a finite float64 vector of length ``d``."""
    return finite_array(name, theta, shape=(d,))


def check_rankings(rankings, n: int, k: int) -> np.ndarray:
    """Return ``rankings`` as an int array of shape ``(n, K)`` whose rows are permutations of 0..K-1."""
    array = np.asarray(rankings)
    if array.shape != (n, k) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"rankings must be an integer array of shape {(n, k)}, got {array.dtype} {array.shape}")
    if not np.array_equal(np.sort(array, axis=1), np.broadcast_to(np.arange(k), (n, k))):
        raise ValueError("rankings must hold a permutation of 0..K-1 in every row (positions in the list, best first)")
    return array


def sample_rankings(lists, theta, rng: np.random.Generator) -> np.ndarray:
    """One Plackett-Luce ranking of every list, shape ``(n, K)``, best first.

    Sorting the utilities ``zᵀθ`` perturbed by independent standard Gumbel noise draws
    exactly the sequential choice without replacement of the model (Yellott, 1977).
    """
    lists = check_lists(lists)
    theta = check_theta("theta", theta, lists.shape[2])
    utilities = lists @ theta + rng.gumbel(size=lists.shape[:2])
    return np.argsort(-utilities, axis=1, kind="stable")


def _ranked(lists: np.ndarray, rankings: np.ndarray) -> np.ndarray:
    """The features of every list reordered best first, shape ``(n, K, d)``."""
    return np.take_along_axis(lists, rankings[:, :, None], axis=1)


def _stage_probabilities(ranked: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Each stage's choice probabilities, shape ``(n, K, K)``, for lists ranked best first.

    ``probabilities[i, k, j]`` is the chance that stage k of query i picks the item ranked
    j-th; it is zero for the items already placed (j < k).
    """
    utilities = ranked @ theta
    k = ranked.shape[1]
    remaining = np.triu(np.ones((k, k), dtype=bool))
    logits = np.where(remaining, utilities[:, None, :], -np.inf)
    logits -= logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=2, keepdims=True)


def _ranked_log_likelihood(ranked: np.ndarray, theta: np.ndarray) -> float:
    utilities = ranked @ theta
    # log Σ_{j>=k} exp(u_j): a reversed cumulative log-sum-exp over the stages
    tail_logsumexp = np.logaddexp.accumulate(utilities[:, ::-1], axis=1)[:, ::-1]
    return float(np.sum(utilities - tail_logsumexp))


def _ranked_derivatives(ranked: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient and the Hessian of the log-likelihood of lists ranked best first."""
    d = ranked.shape[2]
    probabilities = _stage_probabilities(ranked, theta)
    expected = probabilities @ ranked
    gradient = (ranked - expected).sum(axis=(0, 1))
    weighted = ranked * probabilities.sum(axis=1)[:, :, None]  # Σ_k p_kj: how often item j is a candidate
    flat, expected = ranked.reshape(-1, d), expected.reshape(-1, d)
    return gradient, -(weighted.reshape(flat.shape).T @ flat - expected.T @ expected)


def _checked(lists, rankings, theta) -> tuple[np.ndarray, np.ndarray]:
    """The ranked features and θ, after checking the three arguments."""
    lists = check_lists(lists)
    rankings = check_rankings(rankings, *lists.shape[:2])
    return _ranked(lists, rankings), check_theta("theta", theta, lists.shape[2])


def log_likelihood(lists, rankings, theta) -> float:
    """The total log-likelihood Σ_i log P(σ_i | z_i; θ) of the observed rankings."""
    return _ranked_log_likelihood(*_checked(lists, rankings, theta))


def gradient(lists, rankings, theta) -> np.ndarray:
    """The gradient of :func:`log_likelihood`: Σ_i Σ_k (z_{σ(k)} - E_{p_k}[z])."""
    return _ranked_derivatives(*_checked(lists, rankings, theta))[0]


def hessian(lists, rankings, theta) -> np.ndarray:
    """The Hessian of :func:`log_likelihood`: minus the sum over stages of Cov_{p_k}(z)."""
    return _ranked_derivatives(*_checked(lists, rankings, theta))[1]


def fisher_information(features, theta) -> np.ndarray:
    """The Fisher information of one list ``features`` (shape ``(K, d)``), by enumerating all K! rankings.

    It is E_σ[∇ log P ∇ log Pᵀ], which equals E_σ[-∇² log P] (the identity the tests check).
    Exact enumeration is meant for small K (at most 8).
    """
    features = finite_array("features", features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must have shape (K, d) with K >= 2, got {features.shape}")
    k, d = features.shape
    if k > MAX_ENUMERATED_K:
        raise ValueError(f"features has K = {k} items; enumerating K! rankings needs K <= {MAX_ENUMERATED_K}")
    theta = check_theta("theta", theta, d)
    ranked = features[np.array(list(itertools.permutations(range(k))))]
    scores = (ranked - _stage_probabilities(ranked, theta) @ ranked).sum(axis=1)
    probabilities = np.exp([_ranked_log_likelihood(r[None], theta) for r in ranked])
    return np.einsum("r,rd,re->de", probabilities, scores, scores)


def design_matrices(lists) -> np.ndarray:
    """The θ-free design matrix of every list, shape ``(n, d, d)``: A = K Σ_j (z_j - z̄)(z_j - z̄)ᵀ."""
    factors = design_factors(lists)
    return factors @ factors.transpose(0, 2, 1)


def design_factors(lists) -> np.ndarray:
    """Factors B of the design matrices, A = B Bᵀ, shape ``(n, d, K)``: B = √K (z_j - z̄)_j as columns."""
    lists = check_lists(lists)
    centred = lists - lists.mean(axis=1, keepdims=True)
    return math.sqrt(lists.shape[1]) * centred.transpose(0, 2, 1)


def pairwise_design_matrices(lists) -> np.ndarray:
    """The design matrices by their definition, Σ_{j<j'} (z_j - z_j')(z_j - z_j')ᵀ (slow; for the tests)."""
    lists = check_lists(lists)
    k = lists.shape[1]
    pairs = np.array(list(itertools.combinations(range(k), 2)))
    differences = lists[:, pairs[:, 0]] - lists[:, pairs[:, 1]]
    return np.einsum("npd,npe->nde", differences, differences)


def fit_mle(
    lists, rankings, *, ridge: float = 1e-3, theta0=None, tolerance: float = 1e-6, max_iterations: int = 1000
) -> np.ndarray:
    """The ridge-regularized maximum-likelihood θ̂ by Newton's method (iteratively reweighted least squares).

    It maximizes (1/n) Σ_i log P(σ_i | z_i; θ) - (ridge/2) ‖θ - θ0‖², the estimator of the
    DopeWolfe paper's experiments (ridge 1e-3 toward θ0 = 0). The objective is concave,
    so Newton's steps, halved until the objective does not decrease, converge; the fit
    stops when a step is shorter than ``tolerance`` and raises if it has not after
    ``max_iterations`` steps.
    """
    lists = check_lists(lists)
    n, k, d = lists.shape
    rankings = check_rankings(rankings, n, k)
    ridge = check_real("ridge", ridge, 0.0, open_lower=True)
    tolerance = check_real("tolerance", tolerance, 0.0, open_lower=True)
    max_iterations = check_count("max_iterations", max_iterations)
    anchor = np.zeros(d) if theta0 is None else check_theta("theta0", theta0, d)

    ranked = _ranked(lists, rankings)

    def objective(theta):
        return _ranked_log_likelihood(ranked, theta) / n - 0.5 * ridge * float(np.sum((theta - anchor) ** 2))

    theta = anchor.copy()
    value = objective(theta)
    for _ in range(max_iterations):
        grad, hess = _ranked_derivatives(ranked, theta)
        curvature = -hess / n + ridge * np.eye(d)
        step = np.linalg.solve(curvature, grad / n - ridge * (theta - anchor))
        scale = 1.0
        while scale > 1e-10:
            candidate = theta + scale * step
            candidate_value = objective(candidate)
            if candidate_value >= value:
                break
            scale /= 2
        else:
            return theta  # no step increases the objective: θ is the maximizer to round-off
        theta, value = candidate, candidate_value
        if np.linalg.norm(scale * step) < tolerance:
            return theta
    raise RuntimeError(f"fit_mle did not converge in max_iterations = {max_iterations} Newton steps")


def ranking_loss(lists, theta_true, theta_estimate) -> float:
    """Mis-ordered pairs per list: (1/n) Σ_i Σ_{j<j'} 1[sign((z_ij - z_ij')ᵀθ*) ≠ sign((z_ij - z_ij')ᵀθ̂)].

    The metric of the paper's Section 6.1 (at most K(K-1)/2 per list). For a universe of N
    items pass them as one list of shape ``(1, N, d)``; :func:`pair_error_rate` divides by
    the number of pairs.
    """
    lists = check_lists(lists)
    d = lists.shape[2]
    true_utilities = lists @ check_theta("theta_true", theta_true, d)
    estimated = lists @ check_theta("theta_estimate", theta_estimate, d)
    j, jj = np.triu_indices(lists.shape[1], k=1)
    true_order = np.sign(true_utilities[:, j] - true_utilities[:, jj])
    estimated_order = np.sign(estimated[:, j] - estimated[:, jj])
    return float(np.sum(true_order != estimated_order)) / lists.shape[0]


def pair_error_rate(items, theta_true, theta_estimate) -> float:
    """The fraction of the N(N-1)/2 item pairs that θ̂ orders differently from θ*."""
    items = finite_array("items", items)
    if items.ndim != 2 or items.shape[0] < 2:
        raise ValueError(f"items must have shape (N, d) with N >= 2, got {items.shape}")
    pairs = items.shape[0] * (items.shape[0] - 1) / 2
    return ranking_loss(items[None], theta_true, theta_estimate) / pairs
