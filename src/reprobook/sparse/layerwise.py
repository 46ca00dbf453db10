"""Layer-wise 2:4 pruning of one linear layer from its calibration inputs.

A layer ``y = W x`` sees calibration inputs ``X`` (one row per token). Pruning replaces
``W0`` by a 2:4 weight ``W`` that keeps the outputs close, measured by the *local loss*

    L(W) = 1/2 tr((W - W0) H (W - W0)^T),   H = X^T X / n,

the mean squared change of the layer's outputs (halved). Every method here returns a
2:4 weight; ``mask`` arguments are boolean tensors of the weight's shape.

* :func:`magnitude_mask` keeps the two largest ``|W_ij|`` of each group;
* :func:`wanda_mask` keeps the two largest ``|W_ij| ||X_j||`` (Sun et al., 2024);
* :func:`sparsegpt_24` chooses the mask column by column and updates the remaining
  weights with the optimal-brain-surgeon correction (Frantar & Alistarh, 2023);
* :func:`prox_prune` is the paper's method: proximal gradient on L + lam R with a
  growing lam until every group is 2:4, then masked gradient updates (its Algorithm 2);
* :func:`masked_refit` are those masked gradient updates, for any mask, and
  :func:`exact_refit` their limit, the least-squares fit on the mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reprobook.checks import check_count, check_real
from reprobook.secondorder.lanczos import lanczos
from reprobook.sparse.prox import prox_24
from reprobook.sparse.structure import check_weight, is_24, top2_mask


def check_hessian(name: str, hessian, size: int) -> torch.Tensor:
    """Return ``hessian`` after checking it is a finite, symmetric ``size x size`` tensor."""
    if not isinstance(hessian, torch.Tensor) or hessian.shape != (size, size):
        shape = tuple(hessian.shape) if isinstance(hessian, torch.Tensor) else type(hessian).__name__
        raise ValueError(f"{name} must be a ({size}, {size}) tensor (in_features squared), got {shape}")
    if not bool(torch.isfinite(hessian).all()):
        raise ValueError(f"{name} must contain only finite numbers")
    if not torch.allclose(hessian, hessian.T, rtol=1e-4, atol=1e-6 * float(hessian.abs().max()) + 1e-30):
        raise ValueError(f"{name} must be symmetric")
    return hessian


def check_mask(name: str, mask, weight: torch.Tensor) -> torch.Tensor:
    """Return ``mask`` after checking it is a boolean 2:4 mask of the weight's shape."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != weight.shape:
        raise ValueError(f"{name} must be a boolean tensor of shape {tuple(weight.shape)}")
    if not is_24(mask.to(weight.dtype)):
        raise ValueError(f"{name} must keep at most 2 entries of every group of 4 inputs")
    return mask


def calibration_hessian(inputs: torch.Tensor) -> torch.Tensor:
    """H = X^T X / n from calibration inputs ``X`` of shape (tokens, in_features)."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 2 or inputs.shape[0] < 1:
        raise ValueError("inputs must be a 2-D tensor (tokens, in_features) with at least one row")
    return inputs.T @ inputs / inputs.shape[0]


def local_loss(weight: torch.Tensor, original: torch.Tensor, hessian: torch.Tensor) -> float:
    """1/2 tr((W - W0) H (W - W0)^T): half the mean squared change of the layer's outputs."""
    delta = (weight - original).to(hessian.dtype)
    return 0.5 * float(((delta @ hessian) * delta).sum())


def largest_eigenvalue(hessian: torch.Tensor, steps: int = 30) -> float:
    """lambda_max(H) from the largest Ritz value of a short Lanczos run (accurate for the extremes)."""
    start = torch.ones(hessian.shape[0], dtype=torch.float64, device=hessian.device)
    matrix = hessian.to(torch.float64)
    result = lanczos(lambda v: matrix @ v, start, m=min(steps, hessian.shape[0]), reorthogonalize=True)
    return float(result.ritz_values().max())


def magnitude_mask(weight: torch.Tensor) -> torch.Tensor:
    """Keep the two largest |W_ij| of every group."""
    return top2_mask(check_weight("weight", weight).abs())


def wanda_mask(weight: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
    """Keep the two largest Wanda scores |W_ij| ||X_j|| of every group (||X_j||^2 = n H_jj)."""
    check_weight("weight", weight)
    check_hessian("hessian", hessian, weight.shape[1])
    feature_norms = torch.diagonal(hessian).clamp(min=0).sqrt().to(weight.dtype)
    return top2_mask(weight.abs() * feature_norms)


def sparsegpt_24(
    weight: torch.Tensor, hessian: torch.Tensor, damping: float = 0.01, block_size: int = 128
) -> torch.Tensor:
    """SparseGPT's 2:4 pruning with optimal-brain-surgeon updates.

    With U the upper Cholesky factor of (H + delta I)^{-1}, delta = damping * mean(diag H),
    columns are visited left to right. At the first column of each group the two weights of
    largest w^2 / U_jj^2 are kept; pruning column j by err = (w_j - q_j) / U_jj then changes
    every later column k by -err U_jk, the least-squares compensation on the columns not yet
    visited. Columns are processed in blocks of ``block_size``, and a block's accumulated
    corrections reach the later blocks in one matrix product: the result does not depend on
    the block size.
    """
    check_weight("weight", weight)
    check_hessian("hessian", hessian, weight.shape[1])
    damping = check_real("damping", damping, 0.0, open_lower=True)
    block_size = check_count("block_size", block_size)
    if block_size % 4:
        raise ValueError(f"block_size must be a multiple of 4, got {block_size}")
    work = torch.float64 if weight.dtype == torch.float64 else torch.float32
    W = weight.to(work).clone()
    H = hessian.to(work).clone()
    dead = torch.diagonal(H) == 0  # inputs that are always zero: their weights do not matter
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damping * torch.diagonal(H).mean() * torch.eye(H.shape[0], dtype=work, device=H.device)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    mask = torch.zeros_like(W, dtype=torch.bool)
    for start in range(0, W.shape[1], block_size):
        stop = min(start + block_size, W.shape[1])
        errors = torch.zeros(W.shape[0], stop - start, dtype=work, device=W.device)
        for j in range(start, stop):
            if (j - start) % 4 == 0:
                scores = W[:, j : j + 4] ** 2 / torch.diagonal(U)[j : j + 4] ** 2
                mask[:, j : j + 4] = top2_mask(scores)
            err = W[:, j] * ~mask[:, j] / U[j, j]
            W[:, j:stop] -= err[:, None] * U[j, j:stop][None, :]
            errors[:, j - start] = err
        W[:, stop:] -= errors @ U[start:stop, stop:]
    return (W * mask).to(weight.dtype)


def masked_refit(
    weight: torch.Tensor,
    mask: torch.Tensor,
    original: torch.Tensor,
    hessian: torch.Tensor,
    steps: int = 100,
    accelerated: bool = True,
) -> torch.Tensor:
    """Masked gradient updates on the local loss: W <- (W - eta (W - W0) H) * M, eta = 1/lambda_max(H).

    Projected gradient descent on a convex quadratic: with ``accelerated=False`` the
    local loss never increases; ``accelerated=True`` adds Nesterov's momentum
    (the projection onto a fixed mask is linear, so FISTA's extrapolation applies),
    which converges much faster when H is ill-conditioned, as layer inputs are.
    """
    check_weight("weight", weight)
    check_weight("original", original)
    check_hessian("hessian", hessian, weight.shape[1])
    check_mask("mask", mask, weight)
    steps = check_count("steps", steps, minimum=0)
    eta = 1.0 / max(largest_eigenvalue(hessian), 1e-30)
    H, W0 = hessian.to(weight.dtype), original.to(weight.dtype)
    W = weight * mask
    previous = W
    for k in range(steps):
        y = W + (k / (k + 3)) * (W - previous) if accelerated else W
        previous, W = W, (y - eta * ((y - W0) @ H)) * mask
    return W


def exact_refit(mask: torch.Tensor, original: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
    """The minimizer of the local loss on a mask: for each row, H_SS w_S = (H w0)_S on its support S.

    Requires every row to keep the same number of weights (true of a mask with exactly
    two per group) and H_SS non-singular; meant for small layers (one solve per row).
    """
    check_weight("original", original)
    check_hessian("hessian", hessian, original.shape[1])
    check_mask("mask", mask, original)
    kept = mask.sum(dim=1)
    if not bool((kept == kept[0]).all()):
        raise ValueError("mask must keep the same number of weights in every row")
    support = torch.sort(torch.nonzero(mask)[:, 1].view(mask.shape[0], -1), dim=1).values
    H = hessian.to(original.dtype)
    H_ss = H[support[:, :, None], support[:, None, :]]
    rhs = torch.gather(original @ H, 1, support)
    W = torch.zeros_like(original)
    W.scatter_(1, support, torch.linalg.solve(H_ss, rhs.unsqueeze(-1)).squeeze(-1))
    return W


def prox_gradient_step(
    weight: torch.Tensor, original: torch.Tensor, hessian: torch.Tensor, eta: float, lam: float
) -> torch.Tensor:
    """One proximal gradient step on L + lam R: prox_{eta lam R}(W - eta (W - W0) H)."""
    return prox_24(weight - eta * ((weight - original) @ hessian), eta * lam)


@dataclass
class ProxPath:
    """What :func:`prox_prune` did, after each round: lam, the local loss and the share of 2:4 groups."""

    lams: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    fraction_24: list[float] = field(default_factory=list)
    iterations: int = 0


def prox_prune(
    original: torch.Tensor,
    hessian: torch.Tensor,
    strength: float = 0.001,
    growth: float = 1.05,
    inner_steps: int = 20,
    max_rounds: int = 1000,
    refit_steps: int = 100,
    accelerated_refit: bool = True,
    path: ProxPath | None = None,
) -> torch.Tensor:
    """The paper's 2:4 pruner (its Algorithm 2): proximal gradient with a growing weight, then masked updates.

    Iterates ``W <- prox_{eta lam R}(W - eta (W - W0) H)`` with eta = 1/lambda_max(H), from W = W0.
    Every ``inner_steps`` iterations lam is multiplied by ``growth`` until every group has
    at most two non-zeros. lam starts at ``strength / (eta rms(W0)^2)``: then one prox step
    shrinks the third-largest entry of a typical group by about ``strength`` times its size.
    The defaults make the path gradual; the paper's own schedule could not be read.
    The mask is then the two largest entries of each group (the non-zeros), and
    ``refit_steps`` masked gradient updates minimize the local loss on it. Pass a
    :class:`ProxPath` to record the path.
    """
    check_weight("original", original)
    check_hessian("hessian", hessian, original.shape[1])
    strength = check_real("strength", strength, 0.0, open_lower=True)
    growth = check_real("growth", growth, 1.0, open_lower=True)
    inner_steps = check_count("inner_steps", inner_steps)
    max_rounds = check_count("max_rounds", max_rounds)
    work = torch.float64 if original.dtype == torch.float64 else torch.float32
    W0, H = original.to(work), hessian.to(work)
    eta = 1.0 / max(largest_eigenvalue(H), 1e-30)
    scale = float(W0.pow(2).mean()) or 1.0
    lam = strength / (eta * scale)
    W = W0.clone()
    for _ in range(max_rounds):
        for _ in range(inner_steps):
            W = prox_gradient_step(W, W0, H, eta, lam)
        if path is not None:
            path.lams.append(lam)
            path.losses.append(local_loss(W, W0, H))
            path.fraction_24.append(float((W.view(-1, 4) != 0).sum(-1).le(2).float().mean()))
            path.iterations += inner_steps
        if is_24(W):
            break
        lam *= growth
    else:
        raise RuntimeError(
            f"prox_prune: some groups are still not 2:4 after {max_rounds} rounds; raise max_rounds or growth"
        )
    mask = top2_mask(W.abs())
    return masked_refit(W, mask, W0, H, refit_steps, accelerated_refit).to(original.dtype)


#: The layer-wise methods, by name.
METHODS = ("magnitude", "wanda", "sparsegpt", "prox")


def make_pruner(method: str, refit_steps: int = 0, **options):
    """A pruner ``(W0, H) -> W`` for a named method, followed by ``refit_steps`` masked updates.

    ``options`` go to :func:`sparsegpt_24` or :func:`prox_prune`; for ``prox`` the
    masked updates are part of the method (``refit_steps`` is its own).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    refit_steps = check_count("refit_steps", refit_steps, minimum=0)
    if options and method in ("magnitude", "wanda"):
        raise ValueError(f"method {method!r} takes no options, got {sorted(options)}")

    def prune(original: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
        if method == "prox":
            return prox_prune(original, hessian, refit_steps=refit_steps, **options)
        if method == "magnitude":
            weight = original * magnitude_mask(original)
        elif method == "wanda":
            weight = original * wanda_mask(original, hessian)
        else:
            weight = sparsegpt_24(original, hessian, **options)
        if refit_steps:
            weight = masked_refit(weight, top2_mask(weight.abs()), original, hessian, refit_steps)
        return weight

    return prune
