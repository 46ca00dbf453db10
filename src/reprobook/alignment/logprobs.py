"""Batched log-probabilities of responses given prompts, with padding and masking.

A batch is a list of (prompt, response) token sequences. :func:`pack` lays each out as
prompt + response, right-padded, with an attention mask (real tokens) and a response mask
(the tokens whose log-probability counts). :func:`response_logps` returns, per sequence,
log π(response | prompt) = Σ_t log π(y_t | x, y_<t) over the response tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PackedBatch:
    """Right-padded sequences: token ids, attention mask (1 = real token), response mask (1 = scored)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor


def pack(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int) -> PackedBatch:
    """Prompt + response of each pair, right-padded with ``pad_id`` to the longest."""
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(
            f"prompts and responses must be non-empty and of equal length, got {len(prompts)} and {len(responses)}"
        )
    for index, (prompt, response) in enumerate(zip(prompts, responses)):
        if not prompt or not response:
            raise ValueError(f"pair {index} has an empty prompt or response: both need at least one token")
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    scored = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, (prompt, response) in enumerate(zip(prompts, responses)):
        end = len(prompt) + len(response)
        input_ids[row, :end] = torch.tensor(list(prompt) + list(response))
        attention[row, :end] = 1
        scored[row, len(prompt) : end] = 1
    return PackedBatch(input_ids, attention, scored)


def response_logps(model, batch: PackedBatch) -> torch.Tensor:
    """log π(response | prompt) of every sequence of ``batch``, summed over the response tokens.

    Differentiable in the model's parameters; the padding is masked out of attention and of the sum.
    """
    device = next(model.parameters()).device
    input_ids = batch.input_ids.to(device)
    logits = model(input_ids=input_ids, attention_mask=batch.attention_mask.to(device)).logits
    logps = torch.log_softmax(logits[:, :-1].to(torch.float64), dim=-1)
    token_logps = logps.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (token_logps * batch.response_mask[:, 1:].to(device)).sum(dim=1)
