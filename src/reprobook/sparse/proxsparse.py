"""ProxSparse: 2:4 masks learned end to end with the 2:4 regularizer (Liu et al., ICML 2025).

The paper's objective over the weights W of every targeted linear layer, on calibration data D:

    min_W  L_CE(W; D) + lam * sum_groups R(w_g)  [+ lam2 * sum_layers R_frozen(W; W0)],

with R the 2:4 regularizer of :mod:`reprobook.sparse.prox` (the same as in the layer-wise
``prox24`` method) and the optional frozen-weight regularizer

    R_frozen(W; W0) = || (W / (W0 + eps sgn*(W0))) * (W - W0) ||_F^2,   sgn*(0) = +1,

which holds the weights that stay large near their original values. Algorithm 1 as the
official code runs it: one epoch over the calibration sequences; AdamW on the language-model
loss (plus lam2 R_frozen, which is differentiable); gradient-norm clipping; after every
optimizer step, ``W <- prox_{lam R}(W)`` on every targeted weight. The strength is ``lam``
itself at every step, *not* the learning rate times lam as in textbook proximal gradient:
the schedule of lam is constant while the learning rate warms up linearly and then decays
linearly to zero. At the end the mask is the two largest entries of every group of the
*learned* weights, and the model is the **original** model with that mask applied: every
kept weight is the original weight, and nothing is updated after the mask.

The contrast with ``prox24``: there the prox meets each layer's local squared loss, layer by
layer, and the learned weights are kept; here it meets the whole model's loss, and only the
mask is kept.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from reprobook.atomic import atomic_torch_save
from reprobook.checks import check_count, check_real
from reprobook.sparse.model import block_linears, transformer_blocks
from reprobook.sparse.prox import prox_24, regularizer
from reprobook.sparse.structure import check_weight, group_nonzeros, top2_mask

#: The linear layers the official code regularizes: attention and MLP projections (LLaMA, Mistral, Qwen, OPT).
DEFAULT_PATTERN = r"(q|k|v|o|gate|up|down|out)_proj$|fc1$|fc2$"
#: The projection after each optimizer step: the 2:4 prox, or the hard top-2 projection of the ablation.
PROJECTIONS = ("prox", "rigid")
#: The learning-rate schedules after the linear warm-up: the official linear decay to zero, or a constant rate
#: (a control: how much of the mask's settling is the decaying learning rate's doing).
SCHEDULES = ("linear", "constant")
CHECKPOINT = "proxsparse.pt"


def targeted_linears(model: nn.Module, pattern: str = DEFAULT_PATTERN) -> dict[str, nn.Linear]:
    """The linear layers of the decoder blocks whose name matches ``pattern``, by ``layers.<block>.<name>``.

    Embeddings and the output head are outside the blocks, so they are never targeted.
    """
    targets = {
        f"layers.{index}.{name}": linear
        for index, block in enumerate(transformer_blocks(model))
        for name, linear in block_linears(block).items()
        if re.search(pattern, name)
    }
    if not targets:
        raise ValueError(f"the model has no linear layer in its blocks whose name matches pattern {pattern!r}")
    for name, linear in targets.items():
        check_weight(f"the weight of {name}", linear.weight.detach())
    return targets


def frozen_regularizer(weight: torch.Tensor, original: torch.Tensor, epsilon: float) -> torch.Tensor:
    """R_frozen(W; W0) = ||(W / (W0 + eps sgn*(W0))) * (W - W0)||_F^2 with sgn*(0) = +1 (the "full" variant)."""
    sign = torch.where(original >= 0, 1.0, -1.0).to(original.dtype)
    return ((weight / (original + epsilon * sign)) * (weight - original)).pow(2).sum()


def rigid_projection(weight: torch.Tensor) -> torch.Tensor:
    """The ablation's step: keep the two largest entries of every group, zero the others."""
    return weight * top2_mask(weight.abs())


def settling_ratio(log: pd.DataFrame) -> float:
    """Mask changes in the second half of a run divided by those in the first half.

    ``log`` is :attr:`ProxSparseResult.log`; a record belongs to the first half when its step
    is at most half the last step. Below 1 the mask settles as the run goes on; 0 means it
    stopped changing in the first half. A first half without any change gives NaN (nothing to
    compare with).
    """
    if not isinstance(log, pd.DataFrame) or not {"step", "mask flips"} <= set(log.columns) or log.empty:
        raise ValueError("log must be a ProxSparseResult.log with columns 'step' and 'mask flips' and at least one row")
    half = log["step"].max() / 2
    first = int(log.loc[log["step"] <= half, "mask flips"].sum())
    second = int(log.loc[log["step"] > half, "mask flips"].sum())
    return second / first if first else math.nan


def mask_difference(masks: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> float:
    """The share of groups of four whose mask differs from the top-2 magnitude mask of ``weights``.

    ``masks`` are learned masks (:attr:`ProxSparseResult.masks`), ``weights`` the reference
    weights by the same names, typically the original ones: then the reference is magnitude
    pruning, and 0 means the training learned nothing magnitude pruning did not know.
    """
    if not masks or sorted(masks) != sorted(weights):
        raise ValueError(f"masks and weights must name the same layers, got {sorted(masks)} and {sorted(weights)}")
    moved = groups = 0
    for name, mask in masks.items():
        weight = weights[name].detach()
        if mask.shape != weight.shape:
            raise ValueError(f"the mask of {name} has shape {tuple(mask.shape)}, its weight {tuple(weight.shape)}")
        reference = top2_mask(weight.abs()).to(mask.device)
        changed = (mask != reference).view(mask.shape[0], -1, 4).any(-1)
        moved += int(changed.sum())
        groups += changed.numel()
    return moved / groups


@dataclass
class ProxSparseResult:
    """What :func:`proxsparse` learned and logged.

    ``masks``: the 2:4 mask of every targeted weight (True = kept). ``log``: one row every
    ``log_every`` steps: step, learning rate, mean training loss since the last row, the
    regularizer R of the learned weights, the fraction of groups already 2:4 and the number
    of groups whose top-2 mask changed since the last row (the first row compares with the
    magnitude mask of the original weights). ``last_change``: for every group, the last
    logged step at which its mask changed (0 if never). ``seconds``: time spent in the
    training steps (forward, backward, optimizer) and in the projections.
    """

    masks: dict[str, torch.Tensor]
    log: pd.DataFrame
    last_change: dict[str, torch.Tensor]
    seconds: dict[str, float] = field(default_factory=dict)


def proxsparse(
    model: nn.Module,
    calibration: torch.Tensor,
    lam: float,
    *,
    learning_rate: float = 1e-4,
    batch_size: int = 1,
    epochs: int = 1,
    warmup_ratio: float = 0.1,
    max_grad_norm: float = 1.0,
    frozen_strength: float = 0.0,
    frozen_epsilon: float = 0.5,
    projection: str = "prox",
    schedule: str = "linear",
    pattern: str = DEFAULT_PATTERN,
    log_every: int = 10,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    accelerator=None,
    progress: bool = True,
) -> ProxSparseResult:
    """Learn a 2:4 mask of every targeted linear layer end to end, then apply it to the original weights in place.

    ``model`` is a ``transformers`` causal LM with the block layout of LLaMA, Mistral and Qwen or of OPT
    (:func:`reprobook.sparse.model.transformer_blocks`).

    ``calibration`` holds token ids (sequences, length); one epoch is ``ceil(sequences /
    batch_size)`` steps over a seeded shuffle of the sequences. ``lam`` is the per-step prox
    strength (the official code's lambda_1), ``frozen_strength`` and ``frozen_epsilon`` the
    optional lambda_2 and epsilon; ``projection="rigid"`` is the hard top-2 ablation. The learning
    rate warms up linearly over ``warmup_ratio`` of the steps, then decays linearly to zero
    (``schedule="linear"``, the official schedule) or stays at its peak (``"constant"``). With a
    ``checkpoint_dir`` the run writes a checkpoint atomically at every log row and resumes from
    it. ``accelerator`` (an ``accelerate.Accelerator``) runs data-parallel on several GPUs:
    every process takes its share of each batch; by default the model stays on its device.
    """
    lam = check_real("lam", lam, 0.0, open_lower=True)
    check_real("learning_rate", learning_rate, 0.0, open_lower=True)
    check_real("warmup_ratio", warmup_ratio, 0.0, 1.0)
    check_real("max_grad_norm", max_grad_norm, 0.0, open_lower=True)
    check_real("frozen_strength", frozen_strength, 0.0)
    check_real("frozen_epsilon", frozen_epsilon, 0.0, open_lower=True)
    check_count("epochs", epochs)
    check_count("log_every", log_every)
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not isinstance(calibration, torch.Tensor) or calibration.ndim != 2 or calibration.dtype != torch.long:
        raise ValueError("calibration must be a 2-D tensor of token ids (sequences, length) of dtype long")
    check_count("batch_size", batch_size)
    if batch_size > calibration.shape[0]:
        raise ValueError(
            f"batch_size must be at most the {calibration.shape[0]} calibration sequences, got {batch_size}"
        )
    targets = targeted_linears(model, pattern)
    settings = dict(
        lam=lam,
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
        warmup_ratio=warmup_ratio,
        max_grad_norm=max_grad_norm,
        frozen_strength=frozen_strength,
        frozen_epsilon=frozen_epsilon,
        projection=projection,
        schedule=schedule,
        pattern=pattern,
        log_every=log_every,
        seed=seed,
        calibration=hashlib.sha256(calibration.cpu().numpy().tobytes()).hexdigest(),
    )
    original = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
    run = _Run(model, targets, calibration, settings, accelerator)
    run.train(checkpoint_dir, progress)
    masks = {name: top2_mask(linear.weight.detach().abs()).cpu() for name, linear in targets.items()}
    with torch.no_grad():
        model.load_state_dict(original)
        for name, linear in targets.items():
            linear.weight.mul_(masks[name].to(linear.weight.device))
    model.eval()
    return ProxSparseResult(masks, pd.DataFrame(run.rows), run.last_change, run.seconds)


class _Run:
    """The state of one training run: model, optimizer, schedule, log; saved and restored as a whole."""

    def __init__(self, model, targets, calibration, settings, accelerator):
        if accelerator is None:
            from accelerate import Accelerator

            accelerator = Accelerator(cpu=next(model.parameters()).device.type == "cpu")
        if settings["batch_size"] % accelerator.num_processes:
            raise ValueError(
                f"batch_size must be a multiple of the {accelerator.num_processes} processes, "
                f"got {settings['batch_size']}"
            )
        self.accelerator, self.targets, self.calibration, self.settings = accelerator, targets, calibration, settings
        sequences, batch_size, epochs = calibration.shape[0], settings["batch_size"], settings["epochs"]
        self.per_epoch = math.ceil(sequences / batch_size)
        self.steps = self.per_epoch * epochs
        generator = torch.Generator().manual_seed(settings["seed"])
        self.order = torch.stack([torch.randperm(sequences, generator=generator) for _ in range(epochs)])
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"], weight_decay=0.0)
        warmup = math.ceil(settings["warmup_ratio"] * self.steps)
        if settings["schedule"] == "linear":
            self.schedule = get_linear_schedule_with_warmup(optimizer, warmup, self.steps)
        else:
            self.schedule = get_constant_schedule_with_warmup(optimizer, warmup)
        self.wrapped, self.optimizer = accelerator.prepare(model, optimizer)  # on the accelerator's device
        # The frozen-weight regularizer needs the original weights on the device; without it, no copy.
        keep = settings["frozen_strength"] > 0
        self.originals = {name: linear.weight.detach().clone() for name, linear in targets.items() if keep}
        self.step = 0
        self.rows: list[dict] = []
        self.losses: list[float] = []
        self.previous = {name: top2_mask(linear.weight.detach().abs()) for name, linear in targets.items()}
        self.last_change = {
            name: torch.zeros(mask.shape[0], mask.shape[1] // 4, dtype=torch.long)
            for name, mask in self.previous.items()
        }
        self.seconds = {"training steps": 0.0, "projections": 0.0}

    def batch(self, step: int) -> torch.Tensor:
        """This process's share of the sequences of ``step``."""
        epoch, index = divmod(step, self.per_epoch)
        size = self.settings["batch_size"]
        rows = self.order[epoch, index * size : (index + 1) * size]
        mine = rows[self.accelerator.process_index :: self.accelerator.num_processes]
        return self.calibration[mine].to(self.accelerator.device)

    def train(self, checkpoint_dir, progress: bool) -> None:
        """Run the remaining steps of Algorithm 1, logging and checkpointing every ``log_every`` steps."""
        settings = self.settings
        projection, lam, frozen_strength = settings["projection"], settings["lam"], settings["frozen_strength"]
        path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
        self.resume(path)
        self.wrapped.train()
        bar = tqdm(
            range(self.step, self.steps),
            initial=self.step,
            total=self.steps,
            desc=f"ProxSparse ({projection})",
            disable=not progress or not self.accelerator.is_main_process,
            mininterval=2.0,
        )
        for step in bar:
            start = self._clock()
            batch = self.batch(step)
            loss = self.wrapped(input_ids=batch, labels=batch).loss
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {step}")
            total = loss
            if frozen_strength > 0:
                total = loss + frozen_strength * sum(
                    frozen_regularizer(linear.weight, self.originals[name], settings["frozen_epsilon"])
                    for name, linear in self.targets.items()
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.accelerator.backward(total)
            self.accelerator.clip_grad_norm_(self.wrapped.parameters(), settings["max_grad_norm"])
            self.optimizer.step()
            self.schedule.step()
            middle = self._clock()
            with torch.no_grad():
                for linear in self.targets.values():
                    weight = linear.weight
                    weight.copy_(prox_24(weight, lam) if projection == "prox" else rigid_projection(weight))
            self.seconds["training steps"] += middle - start
            self.seconds["projections"] += self._clock() - middle
            self.losses.append(self.accelerator.reduce(loss.detach(), reduction="mean").item())  # over processes
            self.step = step + 1
            if self.step % settings["log_every"] == 0 or self.step == self.steps:
                self.log()
                bar.set_postfix(loss=f"{self.rows[-1]['loss']:.3f}", share_24=f"{self.rows[-1]['fraction 2:4']:.3f}")
                if path is not None:
                    self.save(path)
        self.wrapped.eval()

    def _clock(self) -> float:
        if self.accelerator.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    @torch.no_grad()
    def log(self) -> None:
        """Append a log row: loss, R, the share of 2:4 groups and the mask flips since the last row."""
        flips = groups = compliant = 0
        penalty = 0.0
        for name, linear in self.targets.items():
            weight = linear.weight.detach()
            mask = top2_mask(weight.abs())
            changed = (mask != self.previous[name]).view(mask.shape[0], -1, 4).any(-1).cpu()
            self.last_change[name][changed] = self.step
            flips += int(changed.sum())
            self.previous[name] = mask
            nonzeros = group_nonzeros(weight)
            groups += nonzeros.numel()
            compliant += int((nonzeros <= 2).sum())
            penalty += float(regularizer(weight.float()))
        self.rows.append(
            {
                "step": self.step,
                "learning rate": self.schedule.get_last_lr()[0],
                "loss": sum(self.losses) / len(self.losses),
                "R": penalty,
                "fraction 2:4": compliant / groups,
                "mask flips": flips,
            }
        )
        self.losses = []

    def save(self, path: Path) -> None:
        if not self.accelerator.is_main_process:
            return
        state = {
            "settings": self.settings,
            "step": self.step,
            "model": self.accelerator.unwrap_model(self.wrapped).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rows": self.rows,
            "previous": self.previous,
            "last_change": self.last_change,
            "seconds": self.seconds,
        }
        atomic_torch_save(path, state)

    def resume(self, path: Path | None) -> None:
        """Continue from the checkpoint at ``path`` if there is one, after checking it is this run's."""
        if path is None or not path.is_file():
            return
        state = torch.load(path, weights_only=False, map_location=self.accelerator.device)
        if state["settings"] != self.settings:
            raise ValueError(
                f"checkpoint_dir holds a run with other settings ({path}); use another folder or delete it"
            )
        self.accelerator.unwrap_model(self.wrapped).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.rows, self.seconds = state["step"], state["rows"], state["seconds"]
        self.previous = state["previous"]
        self.last_change = {name: change.cpu() for name, change in state["last_change"].items()}
