"""AVGrad and the adaptive optimizers MADA is compared with, by name.

- **AVGrad** (Ozkara et al. 2024): Adam whose second moment is the time average of the
  exponential moving averages, v̂_t = ((1/t) Σ_{i≤t} v_i) / (1 − β2^t), in place of AMSGrad's
  running maximum. Written here: no package has it.
- **Adam** and **AMSGrad**: ``torch.optim.AdamW`` (decoupled weight decay), with
  ``amsgrad=True`` for AMSGrad (Reddi, Kale and Kumar 2018), whose maximum is over the raw v.
- **Yogi** (Zaheer et al. 2018), **Adan** (Xie et al. 2022), **Lion** (Chen et al. 2023): from
  ``pytorch_optimizer``, with decoupled weight decay.
- **HyperAdam** and **MADA**: :mod:`reprobook.optim.mada`.

Every optimizer takes the same parameter groups (each with its ``weight_decay``) and the same
learning rate, so one training loop and one schedule serve them all.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from reprobook.optim.mada import MADA, hyper_adam

#: The optimizers of the chapter, in the order of its tables.
OPTIMIZERS = ("adam", "amsgrad", "avgrad", "yogi", "adan", "lion", "hyperadam", "mada")


class AVGrad(torch.optim.Optimizer):
    """AVGrad: Adam with the time average of v in place of AMSGrad's maximum.

    m_t = β1 m_{t−1} + (1 − β1) g_t,  v_t = β2 v_{t−1} + (1 − β2) g_t²,
    v̄_t = v̄_{t−1} + (v_t − v̄_{t−1}) / t,
    θ_t = (1 − α λ) θ_{t−1} − α (m_t / (1 − β1^t)) / (√(v̄_t / (1 − β2^t)) + ε).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.95), eps: float = 1e-6, weight_decay=0.0):
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}")
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p), v_mean=torch.zeros_like(p))
                state["step"] += 1
                t = state["step"]
                state["m"].lerp_(p.grad, 1 - beta1)
                state["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                state["v_mean"].add_(state["v"] - state["v_mean"], alpha=1 / t)
                denominator = (state["v_mean"] / (1 - beta2**t)).sqrt_().add_(group["eps"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.addcdiv_(state["m"], denominator, value=-group["lr"] / (1 - beta1**t))
        return loss


def make_optimizer(
    name: str,
    param_groups: list[dict],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-6,
    **mada_options,
) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) on ``param_groups`` at learning rate ``lr``.

    ``betas`` are Adam's (β1, β2) for the Adam family and MADA's initial values; Adan and Lion
    keep their papers' defaults ((0.98, 0.92, 0.99) and (0.95, 0.98)). ``mada_options`` go to
    :class:`~reprobook.optim.mada.MADA` (``hyperadam`` and ``mada`` only).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
    if mada_options and name not in ("hyperadam", "mada"):
        raise ValueError(f"options {sorted(mada_options)} apply to MADA and HyperAdam only, not to {name!r}")
    import pytorch_optimizer  # imported by a run: it imports transformers

    beta1, beta2 = betas
    if name in ("adam", "amsgrad"):
        return torch.optim.AdamW(param_groups, lr=lr, betas=betas, eps=eps, amsgrad=name == "amsgrad")
    if name == "avgrad":
        return AVGrad(param_groups, lr=lr, betas=betas, eps=eps)
    if name == "yogi":
        return pytorch_optimizer.Yogi(param_groups, lr=lr, betas=betas, eps=eps, weight_decouple=True)
    if name == "adan":
        return pytorch_optimizer.Adan(param_groups, lr=lr, eps=eps, weight_decouple=True)
    if name == "lion":
        return pytorch_optimizer.Lion(param_groups, lr=lr, betas=(0.95, 0.98))
    if name == "hyperadam":
        return hyper_adam(param_groups, lr=lr, beta1=beta1, beta2=beta2, eps=eps, **mada_options)
    return MADA(param_groups, lr=lr, beta1=beta1, beta2=beta2, eps=eps, **mada_options)
