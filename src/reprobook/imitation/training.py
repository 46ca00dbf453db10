"""Behaviour cloning with AdamW and a linear learning-rate schedule (the paper's Appendix B).

A constant schedule is the alternative, for the overfitting probe: with the rate decayed to 0
within a short phase, the last steps barely move the weights, so the validation loss cannot
rise at the end of a phase whatever the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from reprobook.checks import check_count, check_real
from reprobook.imitation.windows import Windows

SCHEDULES = ("linear", "constant")


@dataclass(frozen=True)
class TrainingConfig:
    """Gradient steps, batch and step size of one training phase."""

    steps: int = 300
    batch: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    log_every: int = 25  # the validation loss is logged every this many steps
    schedule: str = "linear"  # "linear": decayed linearly to 0 over the steps; "constant"

    def __post_init__(self):
        check_count("steps", self.steps)
        check_count("batch", self.batch)
        check_count("log_every", self.log_every)
        check_real("learning_rate", self.learning_rate, 0.0, open_lower=True)
        check_real("weight_decay", self.weight_decay, 0.0)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")


def set_trainable(policy: torch.nn.Module, parameters: list[torch.nn.Parameter]) -> None:
    """Freeze every parameter of ``policy`` except ``parameters``."""
    chosen = {id(p) for p in parameters}
    for p in policy.parameters():
        p.requires_grad_(id(p) in chosen)


@torch.no_grad()
def mean_loss(policy, windows: Windows, batch: int = 512) -> float:
    """The behaviour-cloning loss over all of ``windows``."""
    total = 0.0
    for start in range(0, len(windows), batch):
        rows = np.arange(start, min(start + batch, len(windows)))
        states, actions, tasks = windows.batch(rows)
        total += float(policy.loss(states, actions, policy.head.index(tasks))) * len(rows)
    return total / len(windows)


def train(
    policy,
    parameters: list[torch.nn.Parameter],
    train_windows: Windows,
    validation: Windows,
    config: TrainingConfig,
    rng: np.random.Generator,
    penalty: Callable[[], torch.Tensor] | None = None,
    replay: Windows | None = None,
    checkpoints: tuple[int, ...] = (),
    on_checkpoint: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Train ``parameters`` (the rest frozen) for ``config.steps`` steps; returns the loss history.

    ``penalty()`` is added to the loss (EWC); with ``replay``, half of each batch comes from it
    (experience replay). ``on_checkpoint(step)`` runs after each step listed in ``checkpoints``.
    """
    set_trainable(policy, parameters)
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    linear = config.schedule == "linear"
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / config.steps if linear else 1.0)
    rows = []
    for step in range(1, config.steps + 1):
        policy.train()
        states, actions, tasks = _draw(train_windows, replay, config.batch, rng)
        loss = policy.loss(states, actions, policy.head.index(tasks))
        objective = loss if penalty is None else loss + penalty()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        schedule.step()
        logged = step % config.log_every == 0 or step == config.steps
        validation_loss = mean_loss(policy, validation) if logged else np.nan
        rows.append({"step": step, "train_loss": loss.item(), "validation_loss": validation_loss})
        if step in checkpoints and on_checkpoint is not None:
            on_checkpoint(step)
    return pd.DataFrame(rows)


def _draw(windows: Windows, replay: Windows | None, batch: int, rng: np.random.Generator):
    if replay is None or len(replay) == 0:
        return windows.batch(rng.integers(len(windows), size=batch))
    fresh = windows.batch(rng.integers(len(windows), size=batch - batch // 2))
    old = replay.batch(rng.integers(len(replay), size=batch // 2))
    return torch.cat([fresh[0], old[0]]), torch.cat([fresh[1], old[1]]), fresh[2] + old[2]
