"""The language model's head as multinomial logistic regression, the model behind FisherSFT's selection.

With the layers below the head frozen, token j of a sentence has a fixed embedding x ∈ R^d
and the head predicts the next token with p(x; Θ) = softmax(Θᵀx), Θ ∈ R^{d×L}. Fine-tuning
the head on sentences S minimizes the negative log-likelihood

    ℓ(Θ) = -Σ_{tokens} log p_y(x; Θ) + (λ/2) ‖Θ‖²,

the model whose Fisher information FisherSFT bounds (arXiv:2505.14826). The synthetic
experiment draws Θ*, samples every token's label from p(x; Θ*), fits Θ̂ on the selected
sentences and measures how far p(x; Θ̂) is from p(x; Θ*) over the whole pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from reprobook.checks import check_count, check_real, finite_array


def _check_tokens(features, labels, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    features = finite_array("features", features)
    if features.ndim != 2:
        raise ValueError(f"features must have shape (tokens, d), got {features.shape}")
    labels = np.asarray(labels)
    if labels.shape != features.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape {features.shape[:1]}, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return features, labels


def head_loss(theta, features, labels, l2: float = 0.0, anchor=None) -> tuple[float, np.ndarray]:
    """The negative log-likelihood of the head Θ (d × L) plus (λ/2)‖Θ - Θ0‖², and its gradient
    X̃ᵀ(P - Y) + λ(Θ - Θ0); the anchor Θ0 is 0 unless given (fine-tuning anchors at the pretrained head)."""
    theta = finite_array("theta", theta)
    features, labels = _check_tokens(features, labels, theta.shape[1])
    shift = theta if anchor is None else theta - anchor
    log_p = log_softmax(features @ theta, axis=1)
    value = -float(log_p[np.arange(len(labels)), labels].sum()) + 0.5 * l2 * float(np.sum(shift**2))
    residual = np.exp(log_p)
    residual[np.arange(len(labels)), labels] -= 1.0
    return value, features.T @ residual + l2 * shift


def fit_head(features, labels, n_classes: int, l2: float = 1e-2, anchor=None) -> np.ndarray:
    """Θ̂ minimizing :func:`head_loss` by L-BFGS (the loss is convex), from the anchor Θ0 (default 0)."""
    n_classes = check_count("n_classes", n_classes, minimum=2)
    l2 = check_real("l2", l2, 0.0, open_lower=True)
    features, labels = _check_tokens(features, labels, n_classes)
    shape = (features.shape[1], n_classes)
    start = np.zeros(shape) if anchor is None else finite_array("anchor", anchor, shape=shape)

    def objective(flat):
        value, grad = head_loss(flat.reshape(shape), features, labels, l2, start)
        return value, grad.ravel()

    result = minimize(objective, start.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return result.x.reshape(shape)


def held_out_nll(theta, features, labels) -> float:
    """The mean negative log-likelihood per token of the head Θ on held-out tokens (perplexity: its exp)."""
    value, _ = head_loss(theta, features, labels)
    return value / len(labels)


def prediction_errors(theta_estimate, theta_true, features) -> tuple[float, float]:
    """The largest and the mean, over tokens, of ‖p(x; Θ̂) - p(x; Θ*)‖_∞."""
    features = finite_array("features", features)
    gaps = np.abs(softmax(features @ theta_estimate, axis=1) - softmax(features @ theta_true, axis=1)).max(axis=1)
    return float(gaps.max()), float(gaps.mean())


def selection_experiment(
    blocks,
    selectors: Mapping[str, Callable[[int, np.random.Generator], np.ndarray]],
    budgets: Sequence[int],
    *,
    n_classes: int,
    seeds: Sequence[int],
    l2: float = 1e-2,
) -> pd.DataFrame:
    """Prediction errors of the head fit on the sentences each selector picks, per seed and budget.

    Per seed, Θ* ~ N(0, I) (d × L) and every token's label is drawn from p(x; Θ*); a selector
    maps (budget, rng) to sentence indices. One row per (seed, selector, budget).
    """
    blocks = finite_array("blocks", blocks)
    n_sentences, tokens, d = blocks.shape
    flat = blocks.reshape(-1, d)
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        theta_true = rng.standard_normal((d, n_classes))
        probabilities = softmax(flat @ theta_true, axis=1)
        cumulative = probabilities.cumsum(axis=1)
        labels = (rng.random((len(flat), 1)) > cumulative).sum(axis=1).clip(max=n_classes - 1)
        labels = labels.reshape(n_sentences, tokens)
        for name, select in selectors.items():
            for budget in budgets:
                chosen = np.asarray(select(budget, rng))
                theta = fit_head(blocks[chosen].reshape(-1, d), labels[chosen].ravel(), n_classes, l2)
                worst, mean = prediction_errors(theta, theta_true, flat)
                rows.append((seed, name, budget, worst, mean))
    return pd.DataFrame(rows, columns=["seed", "selection", "sentences", "max_error", "mean_error"])
