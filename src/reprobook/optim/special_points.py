"""MADA's special points beside the optimizers they name, run in lockstep.

Each entry of :data:`SPECIAL_POINTS` gives the coefficients (β3, ρ, c, γ) at which MADA is
the named optimizer, and builds that optimizer independently (``torch``, AVGrad of
:mod:`reprobook.optim.adaptive`, or ``pytorch_optimizer``). :func:`lockstep_difference`
trains two copies of a model on the same batches, one with each, and returns how far their
parameters drift apart.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch

from reprobook.optim.adaptive import AVGrad
from reprobook.optim.mada import LION_BETAS, MADA


def _adam(params, lr, betas, eps):
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=0.0)


def _avgrad(params, lr, betas, eps):
    return AVGrad(params, lr=lr, betas=betas, eps=eps)


def _yogi(params, lr, betas, eps):
    import pytorch_optimizer  # imported by a run: it imports transformers

    return pytorch_optimizer.Yogi(params, lr=lr, betas=betas, eps=eps, initial_accumulator=0.0)


def _lion(params, lr, betas, eps):
    import pytorch_optimizer

    return pytorch_optimizer.Lion(params, lr=lr, betas=LION_BETAS)


#: name -> (MADA's coefficients there, the named optimizer built from (params, lr, betas, eps)).
SPECIAL_POINTS: dict[str, tuple[dict, Callable]] = {
    "Adam": ({"beta3": 0.0, "rho": 1.0, "c": 1.0, "gamma": 1.0}, _adam),
    "AVGrad": ({"beta3": 0.0, "rho": 0.0, "c": 1.0, "gamma": 1.0}, _avgrad),
    "Yogi": ({"beta3": 0.0, "rho": 1.0, "c": 0.0, "gamma": 1.0}, _yogi),
    "Lion": ({"beta3": 0.0, "rho": 1.0, "c": 1.0, "gamma": 0.0}, _lion),
}


def lockstep_difference(
    model: torch.nn.Module,
    point: str,
    loss: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor],
    batches: Sequence[torch.Tensor],
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-6,
    official_quirks: bool = False,
    at: dict | None = None,
) -> float:
    """max |θ_MADA − θ_named| / max |θ_named| after one step per batch, from copies of ``model``.

    Both optimizers receive the same gradients at every step (those of the loss at MADA's
    copy), so their iterates differ only by the round-off of their own arithmetic, not by
    training amplifying it. MADA runs at the special point ``point`` with its coefficients fixed. With
    ``official_quirks=False`` its textbook options are used (v starts at 0, Lion's u from the
    previous momentum), so the two agree to round-off; with True, the official code's defaults.
    ``at`` places MADA at other coefficients (β3, ρ, c, γ), to see how far a neighbour drifts.
    """
    if point not in SPECIAL_POINTS:
        raise ValueError(f"point must be one of {list(SPECIAL_POINTS)}, got {point!r}")
    coefficients, build = SPECIAL_POINTS[point]
    coefficients = coefficients if at is None else at
    textbook = {} if official_quirks else {"initial_v": 0.0, "lion_updated_momentum": False}
    mada_model, named_model = copy.deepcopy(model), copy.deepcopy(model)
    mada = MADA(mada_model.parameters(), lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, **coefficients, **textbook)
    named = build(named_model.parameters(), lr, betas, eps)
    for batch in batches:
        mada.zero_grad()
        loss(mada_model, batch).backward()
        for p, q in zip(mada_model.parameters(), named_model.parameters()):
            q.grad = p.grad.clone()
        mada.step()
        named.step()
    with torch.no_grad():
        drift = max((p - q).abs().max().item() for p, q in zip(mada_model.parameters(), named_model.parameters()))
        scale = max(q.abs().max().item() for q in named_model.parameters())
    return drift / scale
