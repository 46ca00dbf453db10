"""The chapter's experiment: preference optimization of a laboratory model with a known reward.

:func:`preference_task` loads a pinned laboratory model as the frozen reference (in float64,
so that every CPU prints the same numbers), draws prompts from the held-out text, and labels
pairs of the reference's own samples with a known reward that counts given characters: the
training pairs and, on other prompts, held-out pairs that no run trains on.
:func:`run_preference` trains a fresh copy of the reference on the task's pairs and measures
it on the whole sets of training and held-out pairs as it goes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from reprobook.alignment.preferences import (
    PreferencePairs,
    RewardModel,
    preference_pairs,
    prompt_windows,
    sample_responses,
)
from reprobook.alignment.trainer import PreferenceConfig, train_preferences
from reprobook.checks import check_count
from reprobook.lm.corpus import load_corpus
from reprobook.lm.lab import encode, pretrained


@dataclass
class PreferenceTask:
    """A frozen reference, its tokenizer, labelled pairs, held-out prompts and the known reward."""

    reference: torch.nn.Module
    tokenizer: object
    pairs: PreferencePairs
    held_out: PreferencePairs | None
    eval_prompts: list[list[int]]
    reward: RewardModel
    response_length: int

    def reference_reward(self, seed: int) -> float:
        """Mean true reward of the reference's own samples on the held-out prompts."""
        return float(
            np.mean(self.reward(sample_responses(self.reference, self.eval_prompts, self.response_length, seed)))
        )


def preference_task(
    model: str,
    characters: str,
    reward_kind: str,
    peak: float | None,
    pairs: int,
    eval_prompts: int,
    prompt_length: int,
    response_length: int,
    seed: int,
    held_out_pairs: int = 0,
    reward_draws: int = 1,
) -> PreferenceTask:
    """Pairs, ``held_out_pairs`` held-out pairs (none for 0) and held-out prompts for ``seed``;
    the reward counts the response's ``characters``. The three draw their prompts from
    separate random windows of the validation text. Each held-out prompt is listed
    ``reward_draws`` times, so that a policy's true reward is the mean over that many
    independent samples per prompt (one sample's reward is noisy)."""
    lab = pretrained(model, progress=False)
    tokenizer = lab.tokenizer
    vocabulary = tokenizer.get_vocab()
    missing = [c for c in characters if c not in vocabulary]
    if not characters or missing:
        raise ValueError(f"characters must be tokens of {model}'s vocabulary; not found: {missing or characters!r}")
    reward = RewardModel(tuple(vocabulary[c] for c in characters), reward_kind, peak)
    reference = lab.model.to(torch.float64).eval()
    held_out = encode(tokenizer, load_corpus(), "validation")
    train_prompts = prompt_windows(held_out, pairs, prompt_length, seed=2 * seed)
    check_count("held_out_pairs", held_out_pairs, minimum=0)
    reward_draws = check_count("reward_draws", reward_draws)
    held_out_prompts = prompt_windows(held_out, held_out_pairs, prompt_length, seed=1_000_003 + seed)
    return PreferenceTask(
        reference=reference,
        tokenizer=tokenizer,
        pairs=preference_pairs(reference, train_prompts, response_length, reward, seed=3 * seed + 1),
        held_out=(
            preference_pairs(reference, held_out_prompts, response_length, reward, seed=2_000_003 + 3 * seed)
            if held_out_pairs
            else None
        ),
        eval_prompts=prompt_windows(held_out, eval_prompts, prompt_length, seed=2 * seed + 1) * reward_draws,
        reward=reward,
        response_length=response_length,
    )


def compare_methods(
    tasks: dict[int, PreferenceTask], methods: dict[str, dict], **training
) -> dict[tuple[str, int], dict[str, list[float]]]:
    """Every method on every seed's task: ``PreferenceConfig(seed=seed, **(training | options))``.

    ``methods`` maps a name to its options, which override ``training`` (for example
    ``{"constraint": "log", "penalty": 0.01}`` or ``{"beta": 1.0}``); the histories are keyed
    by (name, seed).
    """
    return {
        (name, seed): run_preference(task, PreferenceConfig(seed=seed, **(training | options)))
        for name, options in methods.items()
        for seed, task in tasks.items()
    }


def run_preference(task: PreferenceTask, config: PreferenceConfig, progress: bool = False) -> dict[str, list[float]]:
    """Train a fresh copy of the task's reference with ``config``; returns the history, with the
    measures of :func:`~reprobook.alignment.trainer.pair_metrics` on the training pairs
    (``train_...``) and the held-out pairs (``held_out_...``) at every evaluation step."""
    policy = copy.deepcopy(task.reference).train()
    watched = {"train": task.pairs} | ({"held_out": task.held_out} if task.held_out is not None else {})
    return train_preferences(
        policy,
        task.reference,
        task.pairs,
        config,
        task.tokenizer.pad_token_id,
        task.reward,
        task.eval_prompts,
        task.response_length,
        watched=watched,
        progress=progress,
    )
