"""Continual imitation over a sequence of task suites: TAIL and the paper's baselines.

A policy is pretrained on a first suite (:func:`pretrain`); then each method adapts it to the
adaptation suites, one after the other (:func:`run_method`):

- ``fft``: full fine-tuning of every parameter on each new suite (one shared model);
- ``er``: FFT where half of each batch replays windows kept from earlier suites;
- ``ewc``: FFT plus the elastic weight consolidation penalty
  ``(lambda / 2) sum_i F_i (theta_i - theta*_i)^2``, with F the diagonal empirical Fisher of the
  earlier suites (summed over suites, "online" EWC) and theta* the weights after the last one;
- ``fpf``: frozen pretrained features; only a new task head (task embeddings, FiLM, action head)
  per suite trains;
- ``tail-lora``, ``tail-prefix``, ``tail-bottleneck``: TAIL. The pretrained backbone is frozen;
  each suite trains its own adapter and task head. The adapter of suite k starts from that of
  suite k - 1 plus N(0, noise^2) noise (a fresh adapter for the first suite).

Methods with per-suite parts (FPF and TAIL) store them in an :class:`AdapterLibrary` on disk,
beside the frozen backbone, and evaluation reloads the part of the suite it tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reprobook.atomic import atomic_torch_save
from reprobook.checks import check_count, check_real
from reprobook.imitation.adapters import adapter_state, add_adapter, load_adapter_state
from reprobook.imitation.evaluate import (
    SELECTION_SEED_BASE,
    parameter_count,
    state_digest,
    success_rates,
    task_outcomes,
)
from reprobook.imitation.policy import BCPolicy, PolicyConfig, TaskHead
from reprobook.imitation.training import TrainingConfig, train
from reprobook.imitation.windows import Windows

METHODS = ("fft", "er", "ewc", "fpf", "tail-lora", "tail-prefix", "tail-bottleneck")
PER_SUITE_METHODS = ("fpf", "tail-lora", "tail-prefix", "tail-bottleneck")


@dataclass(frozen=True)
class ContinualConfig:
    """How each method adapts and how it is evaluated (defaults: the paper's adapter sizes)."""

    training: TrainingConfig = field(default_factory=TrainingConfig)
    checkpoints: int = 1  # evaluations of the new suite while training on it; the best one is kept
    episodes: int = 5  # reported evaluation episodes per task
    selection_episodes: int = 5  # episodes per task, on other seeds, that choose among the checkpoints
    max_steps: int = 200  # steps per evaluation episode
    rank: int = 8
    alpha: float = 8.0
    prefix_tokens: int = 30
    prefix_projection: int = 16
    bottleneck: int = 32
    adapter_noise: float = 1e-3
    ewc_lambda: float = 100.0
    fisher_batches: int = 20
    replay_windows: int = 200  # windows kept per task for experience replay
    workers: int = 1  # processes that evaluate the tasks of a suite in parallel

    def __post_init__(self):
        for name in (
            "checkpoints",
            "episodes",
            "selection_episodes",
            "max_steps",
            "rank",
            "prefix_tokens",
            "prefix_projection",
            "bottleneck",
            "fisher_batches",
            "replay_windows",
            "workers",
        ):
            check_count(name, getattr(self, name))
        if self.checkpoints > self.training.steps:
            raise ValueError(f"checkpoints ({self.checkpoints}) must be at most the steps ({self.training.steps})")
        check_real("alpha", self.alpha, 0.0, open_lower=True)
        check_real("adapter_noise", self.adapter_noise, 0.0)
        check_real("ewc_lambda", self.ewc_lambda, 0.0)

    def checkpoint_steps(self) -> tuple[int, ...]:
        steps = self.training.steps
        return tuple(round(steps * (i + 1) / self.checkpoints) for i in range(self.checkpoints))


@dataclass
class Suite:
    """A suite of tasks with its training and validation windows."""

    name: str
    tasks: list[str]
    train: Windows
    validation: Windows


@dataclass
class Pretrained:
    """The policy after pretraining, its loss history and its success on the pretraining tasks."""

    policy: BCPolicy
    history: pd.DataFrame
    success: dict[str, float]


def pretrain(
    policy_config: PolicyConfig,
    suite: Suite,
    training: TrainingConfig,
    seed: int,
    *,
    episodes: int,
    max_steps: int,
    dtype: torch.dtype = torch.float64,
    workers: int = 1,
) -> Pretrained:
    """Train a fresh policy (every parameter) on the pretraining suite, then evaluate it there."""
    torch.manual_seed(seed)
    policy = BCPolicy(policy_config, suite.tasks).to(dtype)
    policy.normalize_states(suite.train.states)
    history = train(
        policy, list(policy.parameters()), suite.train, suite.validation, training, np.random.default_rng(seed)
    )
    success = success_rates(policy, suite.tasks, episodes, max_steps, workers)
    return Pretrained(policy, history, success)


class AdapterLibrary:
    """The frozen backbone and one stored part (task head and adapter) per suite, in ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def save_backbone(self, policy: BCPolicy) -> None:
        atomic_torch_save(self.folder / "backbone.pt", backbone_state(policy))

    def save(self, suite: int, policy: BCPolicy) -> None:
        part = {"tasks": policy.head.tasks, "head": policy.head.state_dict(), "adapter": adapter_state(policy)}
        atomic_torch_save(self.folder / f"suite-{suite}.pt", part)

    def load(self, suite: int, policy: BCPolicy) -> None:
        """Put suite ``suite``'s task head and adapter into ``policy``."""
        part = torch.load(self.folder / f"suite-{suite}.pt", weights_only=True)
        head = TaskHead(part["tasks"], policy.config).to(policy.head.film.weight.dtype)
        head.load_state_dict(part["head"])
        policy.head = head
        load_adapter_state(policy, part["adapter"])

    def digests(self, suites: int) -> list[str]:
        """A digest of each stored suite part (its head and adapter weights)."""
        parts = [torch.load(self.folder / f"suite-{k}.pt", weights_only=True) for k in range(suites)]
        return [state_digest({**part["head"], **part["adapter"]}) for part in parts]


def backbone_state(policy: BCPolicy) -> dict[str, torch.Tensor]:
    """Copies of the backbone's weights (state encoder and decoder, without adapters)."""
    names = {id(p): name for name, p in policy.named_parameters()}
    return {names[id(p)]: p.detach().clone() for p in policy.backbone_parameters()}


@dataclass
class ContinualResult:
    """What one method did over the sequence of suites."""

    method: str
    suites: list[Suite]
    success: pd.DataFrame  # after, suite, task, success, outcomes (one bool per reported episode)
    history: pd.DataFrame  # suite, step, train_loss, validation_loss
    trainable: int  # parameters trained on each adaptation suite
    total: int  # parameters used to act on one task
    digests: dict[str, list[str]] = field(default_factory=dict)

    def matrix(self) -> np.ndarray:
        """``c[t, k]``: mean success on suite k after suite t (``c[k, k]``: the kept checkpoint's)."""
        means = self.success.groupby(["after", "suite"])["success"].mean()
        size = len(self.suites)
        return np.array([[means.get((t, k), np.nan) for k in range(size)] for t in range(size)])


def add_method_adapter(policy, method: str, config: ContinualConfig) -> None:
    """TAIL's methods (``"tail-lora"`` and the others): insert that style of adapter, sized by
    ``config``, into the policy's decoder. The other methods train the policy as it is."""
    if method.startswith("tail-"):
        add_adapter(
            policy,
            method.removeprefix("tail-"),
            rank=config.rank,
            alpha=config.alpha,
            prefix_tokens=config.prefix_tokens,
            prefix_projection=config.prefix_projection,
            bottleneck=config.bottleneck,
        )


def run_method(
    method: str,
    pretrained: Pretrained,
    suites: list[Suite],
    config: ContinualConfig,
    seed: int,
    library_folder: str | Path,
) -> ContinualResult:
    """Adapt the pretrained policy to ``suites`` in turn with ``method``; evaluate after each suite."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not suites:
        raise ValueError("suites must hold at least one adaptation suite")
    torch.manual_seed(seed)  # new adapters draw their initial weights from PyTorch's global generator
    policy = copy.deepcopy(pretrained.policy)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    library = AdapterLibrary(library_folder)
    per_suite = method in PER_SUITE_METHODS
    if per_suite:
        library.save_backbone(policy)
    else:
        policy.head = policy.head.extended([task for suite in suites for task in suite.tasks], generator)
    add_method_adapter(policy, method, config)
    backbone_before = state_digest(backbone_state(policy))
    adapter_digests, histories, rows = [], [], []
    ewc = ElasticPenalty(config.ewc_lambda) if method == "ewc" else None
    replay = ReplayMemory(config.replay_windows) if method == "er" else None
    trainable = 0
    for k, suite in enumerate(suites):
        if per_suite:
            policy.head = policy.head.extended(suite.tasks, generator)
            if k > 0:
                perturb_adapter(policy, config.adapter_noise, generator)
        parameters = suite_parameters(policy, method)
        trainable = sum(p.numel() for p in parameters)
        best = {"success": -1.0, "state": None}

        def checkpoint(step: int, suite=suite, best=best) -> None:
            rates = success_rates(
                policy, suite.tasks, config.selection_episodes, config.max_steps, config.workers, SELECTION_SEED_BASE
            )
            if np.mean(list(rates.values())) > best["success"]:  # the earliest best checkpoint is kept
                best.update(success=np.mean(list(rates.values())), state=copy.deepcopy(policy.state_dict()))

        history = train(
            policy,
            parameters,
            suite.train,
            suite.validation,
            config.training,
            rng,
            penalty=ewc.penalty if ewc else None,
            replay=replay.windows() if replay else None,
            checkpoints=config.checkpoint_steps() if config.checkpoints > 1 else (),
            on_checkpoint=checkpoint,
        )
        if best["state"] is not None:  # with one checkpoint, the last step's weights are kept unseen
            policy.load_state_dict(best["state"])
        histories.append(history.assign(suite=k))
        rows += _outcome_rows(policy, suite, k, k, config)
        if ewc:
            ewc.consolidate(policy, suite, config.fisher_batches, config.training.batch, rng)
        if replay:
            replay.add(suite.train, rng)
        if per_suite:
            library.save(k, policy)
            adapter_digests.append(state_digest({**policy.head.state_dict(), **adapter_state(policy)}))
        rows += evaluate_earlier(policy, suites[:k], k, config, library if per_suite else None)
    digests = {
        "backbone_before": [backbone_before],
        "backbone_after": [state_digest(backbone_state(policy))],
        "suite_parts_when_saved": adapter_digests,
        "suite_parts_at_end": library.digests(len(suites)) if per_suite else [],
    }
    total = parameter_count(policy)
    return ContinualResult(
        method, suites, pd.DataFrame(rows), pd.concat(histories, ignore_index=True), trainable, total, digests
    )


def validation_curve(
    method: str, pretrained: Pretrained, suite: Suite, training: TrainingConfig, config: ContinualConfig, seed: int
) -> pd.DataFrame:
    """The loss history of ``method`` trained on ``suite`` alone from the pretrained policy, without rollouts.

    The first suite of :func:`run_method`'s sequence, set up the same way (a new task head, and
    an adapter for TAIL's styles), trained with ``training`` in place of ``config.training``:
    for a longer phase or another schedule. ER and EWC equal FFT on a first suite.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    torch.manual_seed(seed)
    policy = copy.deepcopy(pretrained.policy)
    policy.head = policy.head.extended(suite.tasks, torch.Generator().manual_seed(seed))
    add_method_adapter(policy, method, config)
    parameters = suite_parameters(policy, method)
    return train(policy, parameters, suite.train, suite.validation, training, np.random.default_rng(seed))


def suite_parameters(policy: BCPolicy, method: str) -> list[torch.nn.Parameter]:
    """The parameters a method trains on an adaptation suite."""
    if method in ("fft", "er", "ewc"):
        return list(policy.parameters())
    head = list(policy.head.parameters())
    if method == "fpf":
        return head
    backbone = {id(p) for p in policy.backbone_parameters()}
    head_ids = {id(p) for p in head}
    return [p for p in policy.parameters() if id(p) not in backbone and id(p) not in head_ids] + head


def perturb_adapter(policy: BCPolicy, noise: float, generator: torch.Generator) -> None:
    """Start the next suite's adapter from the current one plus N(0, noise^2) noise."""
    state = adapter_state(policy)
    for value in state.values():
        value += noise * torch.randn(value.shape, generator=generator, dtype=torch.float64).to(value.dtype)
    load_adapter_state(policy, state)


def evaluate_earlier(
    policy: BCPolicy, earlier: list[Suite], after: int, config: ContinualConfig, library: AdapterLibrary | None
) -> list[dict]:
    """Success on every earlier suite, each with its own stored part when the method keeps a library."""
    if not earlier:
        return []
    rows, current, current_head = [], copy.deepcopy(policy.state_dict()), policy.head
    for k, suite in enumerate(earlier):
        if library is not None:
            library.load(k, policy)
        rows += _outcome_rows(policy, suite, after, k, config)
    if library is not None:
        policy.head = current_head
        policy.load_state_dict(current)
    return rows


def _outcome_rows(policy: BCPolicy, suite: Suite, after: int, index: int, config: ContinualConfig) -> list[dict]:
    """The reported evaluation of suite ``index`` after suite ``after``: one row per task."""
    outcomes = task_outcomes(policy, suite.tasks, config.episodes, config.max_steps, config.workers)
    return [
        {"after": after, "suite": index, "task": task, "success": float(np.mean(solved)), "outcomes": solved}
        for task, solved in outcomes.items()
    ]


class ElasticPenalty:
    """Online EWC: ``(lambda / 2) sum_i F_i (theta_i - theta*_i)^2`` over the consolidated suites."""

    def __init__(self, strength: float):
        self.strength = strength
        self.fisher: list[torch.Tensor] = []
        self.anchor: list[torch.Tensor] = []
        self.parameters: list[torch.nn.Parameter] = []

    def consolidate(self, policy: BCPolicy, suite: Suite, batches: int, batch: int, rng: np.random.Generator):
        """Add the suite's diagonal empirical Fisher (mean squared minibatch gradient) and re-anchor."""
        self.parameters = list(policy.parameters())
        fisher = [torch.zeros_like(p) for p in self.parameters]
        for _ in range(batches):
            states, actions, tasks = suite.train.batch(rng.integers(len(suite.train), size=batch))
            policy.zero_grad(set_to_none=True)
            policy.loss(states, actions, policy.head.index(tasks)).backward()
            for total, p in zip(fisher, self.parameters, strict=True):
                if p.grad is not None:
                    total += p.grad.detach() ** 2 / batches
        policy.zero_grad(set_to_none=True)
        self.fisher = fisher if not self.fisher else [a + b for a, b in zip(self.fisher, fisher, strict=True)]
        self.anchor = [p.detach().clone() for p in self.parameters]

    def penalty(self) -> torch.Tensor:
        if not self.fisher:
            return torch.zeros(())
        terms = [(f * (p - a) ** 2).sum() for f, p, a in zip(self.fisher, self.parameters, self.anchor, strict=True)]
        return 0.5 * self.strength * torch.stack(terms).sum()


class ReplayMemory:
    """Windows kept from the suites seen so far (at most ``per_task`` per task), for experience replay."""

    def __init__(self, per_task: int):
        self.per_task = per_task
        self.kept: list[Windows] = []

    def add(self, windows: Windows, rng: np.random.Generator) -> None:
        for task in dict.fromkeys(windows.tasks):
            rows = np.flatnonzero(np.array(windows.tasks) == task)
            self.kept.append(windows.subset(rng.permutation(rows)[: self.per_task]))

    def windows(self) -> Windows | None:
        if not self.kept:
            return None
        return Windows(
            torch.cat([w.states for w in self.kept]),
            torch.cat([w.actions for w in self.kept]),
            [task for w in self.kept for task in w.tasks],
        )
