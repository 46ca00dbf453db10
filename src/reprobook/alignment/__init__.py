"""Preference alignment: the DPO family as classification, the C2-DPO constraint, a preference trainer.

- :mod:`~reprobook.alignment.losses`: the losses as pure functions of policy and reference log-probabilities;
- :mod:`~reprobook.alignment.logprobs`: batched response log-probabilities with padding and masks;
- :mod:`~reprobook.alignment.preferences`: preference pairs over a model's samples, with a known reward;
- :mod:`~reprobook.alignment.trainer`: training against a frozen reference, resumable.
"""

import lazy_loader

# Each name is imported from its module on first use, so that importing one tool does not
# import the libraries of all the others.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "logprobs": ["PackedBatch", "pack", "response_logps"],
        "losses": ["CONSTRAINTS", "LOSSES", "classification_loss", "constraint_violation", "preference_loss"],
        "preferences": [
            "PreferencePairs",
            "RewardModel",
            "known_reward",
            "preference_pairs",
            "prompt_windows",
            "sample_responses",
            "target_counts",
        ],
        "trainer": ["PreferenceConfig", "reference_logps", "score_pairs", "train_preferences"],
    },
)
