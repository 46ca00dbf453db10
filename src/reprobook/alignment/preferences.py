"""Preference data with a known reward, over a laboratory model's own generations.

The design of the chapter's dossier, on the book's character-level model: prompts are
windows of the held-out text, each prompt gets two responses sampled from the reference
model, and the known reward counts the response's characters from a target set
(``count``). The ``monotone`` reward is the count itself; the ``peaked`` reward rises to a
peak and falls after it (r = c for c ≤ peak, 2·peak − c beyond), so that pushing the count
ever higher, as a collapsing policy may, is penalized. The label of a pair is drawn from the
Bradley–Terry model on the reward, P(a ≻ b) = σ(r_a − r_b).

Sampling draws its uniforms from NumPy and inverts the float64 cumulative probabilities, so a
seed gives the same responses on every CPU (``torch.multinomial`` does not promise that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

REWARDS = ("monotone", "peaked")


@torch.no_grad()
def sample_responses(model, prompts: Sequence[Sequence[int]], length: int, seed: int) -> list[list[int]]:
    """One response of ``length`` tokens per prompt, sampled at temperature 1 (prompts of equal length)."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    if not prompts or len({len(p) for p in prompts}) != 1:
        raise ValueError("prompts must be a non-empty list of token sequences of one length")
    generator = np.random.default_rng(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tokens = torch.tensor([list(p) for p in prompts], device=device)
    for _ in range(length):
        logits = model(input_ids=tokens).logits[:, -1].to(torch.float64)
        cumulative = torch.softmax(logits, dim=-1).cumsum(dim=-1).cpu().numpy()
        uniforms = generator.random(len(prompts)) * cumulative[:, -1]
        choice = np.minimum((cumulative < uniforms[:, None]).sum(axis=1), cumulative.shape[1] - 1)
        tokens = torch.cat([tokens, torch.from_numpy(choice).to(device)[:, None]], dim=1)
    model.train(was_training)
    return tokens[:, len(prompts[0]) :].tolist()


def target_counts(responses: Sequence[Sequence[int]], targets: Sequence[int]) -> np.ndarray:
    """How many tokens of each response are in ``targets``."""
    wanted = set(targets)
    if not wanted:
        raise ValueError("targets must name at least one token")
    return np.array([sum(token in wanted for token in response) for response in responses], dtype=float)


def known_reward(counts: np.ndarray, kind: str, peak: float | None = None) -> np.ndarray:
    """The ``monotone`` reward r = c or the ``peaked`` reward r = c for c ≤ peak, 2·peak − c above it."""
    counts = np.asarray(counts, dtype=float)
    if kind == "monotone":
        return counts
    if kind != "peaked":
        raise ValueError(f"kind must be one of {list(REWARDS)}, got {kind!r}")
    if peak is None or not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"the peaked reward needs a positive peak, got {peak!r}")
    return np.where(counts <= peak, counts, 2 * peak - counts)


@dataclass(frozen=True)
class RewardModel:
    """The known reward of a response: the count of ``targets`` tokens, monotone or peaked."""

    targets: tuple[int, ...]
    kind: str = "monotone"
    peak: float | None = None

    def __post_init__(self):
        known_reward(np.zeros(1), self.kind, self.peak)  # checks kind and peak
        target_counts([[0]], self.targets)  # checks targets

    def __call__(self, responses: Sequence[Sequence[int]]) -> np.ndarray:
        return known_reward(target_counts(responses, self.targets), self.kind, self.peak)


@dataclass(frozen=True)
class PreferencePairs:
    """Prompts with a chosen and a rejected response each, and the responses' true rewards."""

    prompts: list[list[int]]
    chosen: list[list[int]]
    rejected: list[list[int]]
    chosen_reward: np.ndarray
    rejected_reward: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)


def prompt_windows(tokens: torch.Tensor, count: int, length: int, seed: int) -> list[list[int]]:
    """``count`` prompts: windows of ``length`` consecutive tokens at seeded random offsets of a stream."""
    if tokens.ndim != 1 or tokens.numel() <= length:
        raise ValueError(f"tokens must be a 1-D stream longer than {length}, got shape {tuple(tokens.shape)}")
    starts = np.random.default_rng(seed).integers(0, tokens.numel() - length, size=count)
    return [tokens[s : s + length].tolist() for s in starts]


def preference_pairs(
    reference, prompts: list[list[int]], length: int, reward: RewardModel, seed: int
) -> PreferencePairs:
    """Two reference samples per prompt, labelled by Bradley–Terry on the known reward."""
    first = sample_responses(reference, prompts, length, seed)
    second = sample_responses(reference, prompts, length, seed + 1)
    r_first, r_second = reward(first), reward(second)
    first_wins = np.random.default_rng(seed + 2).random(len(prompts)) < 1 / (1 + np.exp(r_second - r_first))
    chosen = [a if win else b for a, b, win in zip(first, second, first_wins)]
    rejected = [b if win else a for a, b, win in zip(first, second, first_wins)]
    return PreferencePairs(
        prompts=[list(p) for p in prompts],
        chosen=chosen,
        rejected=rejected,
        chosen_reward=np.where(first_wins, r_first, r_second),
        rejected_reward=np.where(first_wins, r_second, r_first),
    )
