"""Preference alignment: the DPO family as classification, the C2-DPO constraint, a preference trainer.

- :mod:`~reprobook.alignment.losses`: the losses as pure functions of policy and reference log-probabilities;
- :mod:`~reprobook.alignment.logprobs`: batched response log-probabilities with padding and masks;
- :mod:`~reprobook.alignment.preferences`: preference pairs over a model's samples, with a known reward;
- :mod:`~reprobook.alignment.trainer`: training against a frozen reference, resumable.
"""

from reprobook.alignment.logprobs import PackedBatch, pack, response_logps
from reprobook.alignment.losses import (
    CONSTRAINTS,
    LOSSES,
    classification_loss,
    constraint_violation,
    preference_loss,
)
from reprobook.alignment.preferences import (
    PreferencePairs,
    RewardModel,
    known_reward,
    preference_pairs,
    prompt_windows,
    sample_responses,
    target_counts,
)
from reprobook.alignment.trainer import PreferenceConfig, reference_logps, score_pairs, train_preferences

__all__ = [
    "CONSTRAINTS",
    "LOSSES",
    "PackedBatch",
    "PreferenceConfig",
    "PreferencePairs",
    "RewardModel",
    "classification_loss",
    "constraint_violation",
    "known_reward",
    "pack",
    "preference_loss",
    "preference_pairs",
    "prompt_windows",
    "reference_logps",
    "response_logps",
    "sample_responses",
    "score_pairs",
    "target_counts",
    "train_preferences",
]
