"""2:4 structure of linear weights: groups, the validator, masks and occupancy statistics.

A weight of ``nn.Linear`` has shape ``(out_features, in_features)``. Its 2:4 groups are
four consecutive *input* weights of one output row, ``W[r, 4g:4g+4]``: the layout the
GPU's sparse tensor cores use. A weight is 2:4 when every group has at most two
non-zeros; sparser groups are valid too.
"""

from __future__ import annotations

import torch

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_weight(name: str, weight, *, finite: bool = True) -> torch.Tensor:
    """Return ``weight`` after checking it is a 2-D floating tensor whose input dimension is a multiple of 4."""
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype float16, bfloat16, float32 or float64, got {weight.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"{name} must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if weight.shape[1] % 4 != 0:
        raise ValueError(
            f"{name} must have an input dimension (shape[1]) that is a multiple of 4 for 2:4 groups, "
            f"got shape {tuple(weight.shape)}"
        )
    if finite and not bool(torch.isfinite(weight).all()):
        raise ValueError(f"{name} must contain only finite numbers")
    return weight


def groups(weight: torch.Tensor) -> torch.Tensor:
    """A view of ``weight`` as ``(out_features, in_features // 4, 4)``: one row per 2:4 group."""
    check_weight("weight", weight, finite=False)
    return weight.view(weight.shape[0], -1, 4)


def group_nonzeros(weight: torch.Tensor) -> torch.Tensor:
    """The number of non-zeros of every group, shape ``(out_features, in_features // 4)``."""
    return (groups(weight) != 0).sum(dim=-1)


def is_24(weight: torch.Tensor) -> bool:
    """True when every group of 4 consecutive input weights has at most 2 non-zeros."""
    return bool((group_nonzeros(weight) <= 2).all())


def occupancy(weight: torch.Tensor) -> dict[int, int]:
    """How many groups hold 0, 1, 2, 3 and 4 non-zeros: the 2:4 audit of a weight."""
    counts = torch.bincount(group_nonzeros(weight).flatten(), minlength=5)
    return {k: int(counts[k]) for k in range(5)}


def sparsity(weight: torch.Tensor) -> float:
    """The fraction of zero entries."""
    return float((weight == 0).sum()) / weight.numel()


def top2_mask(scores: torch.Tensor) -> torch.Tensor:
    """The boolean 2:4 mask keeping the two largest ``scores`` of every group.

    Ties go to the earlier position, so the mask is deterministic.
    """
    check_weight("scores", scores)
    grouped = scores.view(scores.shape[0], -1, 4)
    # A stable sort on the negated scores puts the largest first and keeps earlier positions first among equals.
    order = torch.sort(-grouped, dim=-1, stable=True).indices
    mask = torch.zeros_like(grouped, dtype=torch.bool)
    mask.scatter_(-1, order[..., :2], True)
    return mask.view_as(scores)
