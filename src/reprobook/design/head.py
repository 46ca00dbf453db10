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
import torch
from scipy.optimize import minimize
from scipy.special import softmax

from reprobook.checks import check_count, check_real, finite_array
from reprobook.design.greedy import softmax_weights


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


PRECISIONS = {"float64": torch.float64, "float32": torch.float32}
#: L-BFGS's relative tolerance on the decrease of the loss, per precision (float32 resolves about 1e-7)
TOLERANCES = {"float64": 2.2e-9, "float32": 1e-6}


def _loss_and_gradient(theta, features, labels, l2: float, anchor) -> tuple[float, np.ndarray]:
    """The penalized loss of :func:`head_loss` and its gradient (float64), from tensors of one precision."""
    theta = theta.detach().requires_grad_(True)
    value = torch.nn.functional.cross_entropy(features @ theta, labels, reduction="sum")
    value = value + 0.5 * l2 * torch.sum((theta - anchor) ** 2)
    (gradient,) = torch.autograd.grad(value, theta)
    return float(value.detach()), gradient.double().numpy()


def head_loss(theta, features, labels, l2: float = 0.0, anchor=None) -> tuple[float, np.ndarray]:
    """The negative log-likelihood of the head Θ (d × L) plus (λ/2)‖Θ - Θ0‖², and its gradient
    X̃ᵀ(P - Y) + λ(Θ - Θ0); the anchor Θ0 is 0 unless given (fine-tuning anchors at the pretrained head)."""
    theta = finite_array("theta", theta)
    features, labels = _check_tokens(features, labels, theta.shape[1])
    anchor = np.zeros_like(theta) if anchor is None else finite_array("anchor", anchor, shape=theta.shape)
    return _loss_and_gradient(*(torch.from_numpy(a) for a in (theta, features, labels)), l2, torch.from_numpy(anchor))


def fit_head(features, labels, n_classes: int, l2: float = 1e-2, anchor=None, precision: str = "float64") -> np.ndarray:
    """Θ̂ minimizing :func:`head_loss` by L-BFGS (the loss is convex), from the anchor Θ0 (default 0).

    ``precision="float32"`` computes the loss in single precision, about ten times faster for a
    language model's vocabulary (L in the thousands); L-BFGS then stops at a relative decrease
    of 1e-6, which is what single precision resolves.
    """
    n_classes = check_count("n_classes", n_classes, minimum=2)
    l2 = check_real("l2", l2, 0.0, open_lower=True)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    features, labels = _check_tokens(features, labels, n_classes)
    shape = (features.shape[1], n_classes)
    start = np.zeros(shape) if anchor is None else finite_array("anchor", anchor, shape=shape)
    dtype = PRECISIONS[precision]
    features_t, labels_t, anchor_t = (
        torch.from_numpy(features).to(dtype),
        torch.from_numpy(labels),
        torch.from_numpy(start).to(dtype),
    )

    def objective(flat):
        value, gradient = _loss_and_gradient(
            torch.from_numpy(flat.reshape(shape)).to(dtype), features_t, labels_t, l2, anchor_t
        )
        return value, gradient.ravel()

    options = {"maxiter": 1000, "ftol": TOLERANCES[precision]}
    result = minimize(objective, start.ravel(), jac=True, method="L-BFGS-B", options=options)
    return result.x.reshape(shape)


@torch.no_grad()
def held_out_nll(theta, features, labels) -> float:
    """The mean negative log-likelihood per token of the head Θ on held-out tokens (perplexity: its exp)."""
    theta = finite_array("theta", theta)
    features, labels = _check_tokens(features, labels, theta.shape[1])
    logits = torch.from_numpy(features) @ torch.from_numpy(theta)
    return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))


def predictive_weights(theta, blocks, chunk: int = 100) -> np.ndarray:
    """1 - ‖p‖² of the head's prediction p = softmax(Θᵀx) at every token of ``blocks`` (N, M, d):
    the token weights of probability-weighted FisherSFT, computed ``chunk`` sentences at a time."""
    theta, blocks = finite_array("theta", theta), finite_array("blocks", blocks)
    chunk = check_count("chunk", chunk)
    starts = range(0, len(blocks), chunk)
    return np.concatenate([softmax_weights(softmax(blocks[i : i + chunk] @ theta, axis=2)) for i in starts])


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
    lengths=None,
) -> pd.DataFrame:
    """Prediction errors of the head fit on the sentences each selector picks, per seed and budget.

    Per seed, Θ* ~ N(0, I) (d × L) and every token's label is drawn from p(x; Θ*); a selector
    maps (budget, rng) to sentence indices. The errors are over the pool's real tokens: the
    first ``lengths[i]`` rows of sentence i (all rows when ``lengths`` is None). One row per
    (seed, selector, budget).
    """
    blocks = finite_array("blocks", blocks)
    n_sentences, tokens, d = blocks.shape
    lengths = np.full(n_sentences, tokens) if lengths is None else np.asarray(lengths)
    real = np.arange(tokens) < lengths[:, None]
    pool_tokens = blocks[real]
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        theta_true = rng.standard_normal((d, n_classes))
        cumulative = softmax(blocks @ theta_true, axis=2).cumsum(axis=2)
        labels = (rng.random((n_sentences, tokens, 1)) > cumulative).sum(axis=2).clip(max=n_classes - 1)
        for name, select in selectors.items():
            for budget in budgets:
                chosen = np.asarray(select(budget, rng))
                mask = real[chosen]
                theta = fit_head(blocks[chosen][mask], labels[chosen][mask], n_classes, l2)
                worst, mean = prediction_errors(theta, theta_true, pool_tokens)
                rows.append((seed, name, budget, worst, mean))
    return pd.DataFrame(rows, columns=["seed", "selection", "sentences", "max_error", "mean_error"])
