"""Preference optimization of a policy against a frozen reference: DPO, its family and C2-DPO.

The reference's log-probabilities of every chosen and rejected response are computed once,
before training (:func:`reference_logps`, optionally kept in the book's content-addressed
cache). Each step draws a minibatch of pairs from a seeded generator, scores the chosen and
rejected responses in one batched forward pass of the policy, and takes an AdamW step on
:func:`reprobook.alignment.losses.preference_loss`. Every step logs the mean chosen and
rejected log-ratios, the margin, the preference accuracy and the constraint's violation, all
on that minibatch; every ``log_every`` steps the policy samples fresh responses to held-out
prompts and their true reward is logged, and the same quantities are measured on whole
fixed sets of pairs (:func:`pair_metrics`: the training pairs, held-out pairs). A checkpoint
(policy, optimizer, generator, history) is written atomically at each of those steps, and a
run that finds one resumes from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reprobook.alignment.logprobs import pack, response_logps
from reprobook.alignment.losses import CONSTRAINTS, LOSSES, preference_loss
from reprobook.alignment.preferences import PreferencePairs, sample_responses
from reprobook.atomic import atomic_torch_save
from reprobook.cache import cache_root, content_key
from reprobook.lm.lab import weights_digest

CHECKPOINT = "preference_checkpoint.pt"
LOGGED = ("loss", "chosen_logratio", "rejected_logratio", "margin", "accuracy", "violation")
#: What :func:`pair_metrics` measures on a whole set of pairs.
PAIR_METRICS = ("chosen_logratio", "rejected_logratio", "accuracy", "true_order_accuracy", "violation")


@dataclass(frozen=True)
class PreferenceConfig:
    """A preference run: the loss (``preference_loss``'s arguments) and the optimization."""

    beta: float = 0.1
    loss: str = "dpo"
    label_smoothing: float = 0.0
    constraint: str | None = None
    penalty: float = 0.0
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    log_every: int = 25
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.constraint is not None and self.constraint not in CONSTRAINTS:
            raise ValueError(f"constraint must be None or one of {list(CONSTRAINTS)}, got {self.constraint!r}")
        for name in ("steps", "batch_size", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.learning_rate, int | float) and 0 < self.learning_rate < math.inf):
            raise ValueError(f"learning_rate must be a finite positive number, got {self.learning_rate!r}")


def score_pairs(model, pairs: PreferencePairs, indices: Sequence[int], pad_id: int) -> tuple[torch.Tensor, ...]:
    """log π(chosen) and log π(rejected) of the pairs at ``indices``, in one batched forward pass."""
    prompts = [pairs.prompts[i] for i in indices]
    responses = [pairs.chosen[i] for i in indices] + [pairs.rejected[i] for i in indices]
    logps = response_logps(model, pack(prompts + prompts, responses, pad_id))
    return logps.chunk(2)


@torch.no_grad()
def reference_logps(
    reference, pairs: PreferencePairs, pad_id: int, batch_size: int = 64, cache: str | Path | bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π_ref of every chosen and every rejected response (float64), computed once.

    With ``cache`` (a folder, or True for the book's cache folder) the result is stored under
    a key of the reference's weights and the pairs, and read back on the next call.
    """
    path = None
    if cache:
        key = content_key(
            "reference-logps", weights_digest(reference), pairs.prompts, pairs.chosen, pairs.rejected, pad_id
        )
        path = cache_root(None if cache is True else cache) / "alignment" / f"{key}.pt"
        if path.is_file():
            stored = torch.load(path, weights_only=True)
            return stored["chosen"], stored["rejected"]
    was_training = reference.training
    reference.eval()
    chosen, rejected = [], []
    for start in range(0, len(pairs), batch_size):
        c, r = score_pairs(reference, pairs, range(start, min(start + batch_size, len(pairs))), pad_id)
        chosen.append(c.cpu())
        rejected.append(r.cpu())
    reference.train(was_training)
    result = torch.cat(chosen), torch.cat(rejected)
    if path is not None:
        atomic_torch_save(path, {"chosen": result[0], "rejected": result[1]})
    return result


@torch.no_grad()
def pair_metrics(
    policy, pairs: PreferencePairs, reference: tuple[torch.Tensor, torch.Tensor], pad_id: int
) -> dict[str, float]:
    """The policy's mean chosen and rejected log-ratios ρ_w, ρ_l over every pair of ``pairs``,
    its preference accuracy (ρ_w > ρ_l: the label's order), its accuracy on the true reward's
    order (sign(ρ_w − ρ_l) = sign(r_w − r_l), over the pairs whose rewards differ) and the log
    constraint's violation mean(ρ_w + ρ_l). ``reference`` holds the reference's log-probabilities
    of the pairs (:func:`reference_logps`).
    """
    chosen, rejected = reference_logps(policy, pairs, pad_id)
    chosen, rejected = chosen - reference[0], rejected - reference[1]
    true_order = np.sign(pairs.chosen_reward - pairs.rejected_reward)
    decided = true_order != 0
    margin = (chosen - rejected).numpy()
    return {
        "chosen_logratio": chosen.mean().item(),
        "rejected_logratio": rejected.mean().item(),
        "accuracy": (chosen > rejected).double().mean().item(),
        "true_order_accuracy": (
            float(np.mean(np.sign(margin[decided]) == true_order[decided])) if decided.any() else math.nan
        ),
        "violation": (chosen + rejected).mean().item(),
    }


def train_preferences(
    policy,
    reference,
    pairs: PreferencePairs,
    config: PreferenceConfig,
    pad_id: int,
    reward: Callable[[list[list[int]]], np.ndarray] | None = None,
    eval_prompts: list[list[int]] | None = None,
    response_length: int | None = None,
    watched: dict[str, PreferencePairs] | None = None,
    checkpoint_dir: str | Path | None = None,
    reference_cache: str | Path | bool | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``policy`` on ``pairs`` against the frozen ``reference``; returns the history.

    History: ``step`` and the batch means of ``LOGGED`` at every step; at step 0 and every
    ``log_every`` steps (``eval_step``): ``true_reward``, the mean reward of one fresh sample
    per ``eval_prompts`` prompt, when ``reward`` is given, and ``<name>_<metric>`` for each
    named set of pairs in ``watched`` and each of :func:`pair_metrics`'s metrics.
    """
    if reward is not None and (not eval_prompts or response_length is None):
        raise ValueError("a reward needs eval_prompts and response_length to score fresh samples")
    watched = dict(watched or {})
    reference_chosen, reference_rejected = reference_logps(reference, pairs, pad_id, cache=reference_cache)
    watched_reference = {name: reference_logps(reference, fixed, pad_id) for name, fixed in watched.items()}
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"step": [], **{k: [] for k in LOGGED}, "eval_step": [], "true_reward": []}
    history.update({f"{name}_{metric}": [] for name in watched for metric in PAIR_METRICS})
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    start = _resume(path, config, policy, optimizer, generator, history)

    def evaluate(step: int) -> None:
        if reward is None and not watched:
            return
        history["eval_step"].append(step)
        if reward is not None:
            samples = sample_responses(policy, eval_prompts, response_length, seed=config.seed * 100_003 + step)
            history["true_reward"].append(float(np.mean(reward(samples))))
        for name, fixed in watched.items():
            for metric, value in pair_metrics(policy, fixed, watched_reference[name], pad_id).items():
                history[f"{name}_{metric}"].append(value)

    if start == 0:
        evaluate(0)
    policy.train()
    for step in tqdm(range(start, config.steps), initial=start, total=config.steps, disable=not progress):
        indices = torch.randint(len(pairs), (config.batch_size,), generator=generator)
        chosen, rejected = score_pairs(policy, pairs, indices.tolist(), pad_id)
        loss, metrics = preference_loss(
            chosen,
            rejected,
            reference_chosen[indices].to(chosen.device),
            reference_rejected[indices].to(chosen.device),
            config.beta,
            config.loss,
            config.label_smoothing,
            config.constraint,
            config.penalty,
        )
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the preference loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["step"].append(step + 1)
        history["loss"].append(loss.item())
        for name, values in metrics.items():
            history[name].append(values.mean().item())
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            evaluate(step + 1)
            if path is not None:
                _save(path, config, policy, optimizer, generator, history)
    policy.eval()
    return history


def _save(path: Path, config, policy, optimizer, generator, history) -> None:
    state = {
        "config": asdict(config),
        "policy": policy.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "history": history,
    }
    atomic_torch_save(path, state)


def _resume(path: Path | None, config, policy, optimizer, generator, history) -> int:
    """Load a checkpoint of the same configuration if there is one; return the step to continue from."""
    if path is None or not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    if state["config"] != asdict(config):
        raise ValueError(f"the checkpoint at {path} belongs to another configuration: {state['config']}")
    policy.load_state_dict(state["policy"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    history.update(state["history"])
    return history["step"][-1] if history["step"] else 0
