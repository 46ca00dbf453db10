"""A DPO step with the reference's log-probabilities cached, against recomputing them every step.

The trainer of ``reprobook.alignment`` scores the reference once, before training; a trainer
that runs the frozen reference inside every step pays one more forward pass per step. Printed:
milliseconds per step of each (a lab-micro-shaped model in float64, batches of chosen and
rejected responses scored in one pass) and the ratio, in one run.
"""

from __future__ import annotations

import copy
import time

import torch

from reprobook.alignment import PreferencePairs, preference_loss, reference_logps, score_pairs
from reprobook.lm.models import build_model, get_spec


def main(quick: bool = False) -> list[str]:
    steps, batch, length = (3, 8, 8) if quick else (30, 32, 16)
    generator = torch.Generator().manual_seed(0)
    reference = build_model(get_spec("lab-micro"), 64, 0, seed=0).double().eval()
    policy = copy.deepcopy(reference).train()
    count = 4 * batch

    def tokens(size):
        return torch.randint(1, 64, (count, size), generator=generator).tolist()

    pairs = PreferencePairs(tokens(length), tokens(length), tokens(length), None, None)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    cached = reference_logps(reference, pairs, pad_id=0)
    timings = {}
    for mode in ("cached", "recomputed"):
        clock = time.perf_counter()
        for _ in range(steps):
            indices = torch.randint(count, (batch,), generator=generator).tolist()
            chosen, rejected = score_pairs(policy, pairs, indices, 0)
            if mode == "cached":
                reference_chosen, reference_rejected = cached[0][indices], cached[1][indices]
            else:
                with torch.no_grad():
                    reference_chosen, reference_rejected = score_pairs(reference, pairs, indices, 0)
            loss, _ = preference_loss(chosen, rejected, reference_chosen, reference_rejected)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        timings[mode] = (time.perf_counter() - clock) / steps
    return [
        f"{batch} pairs of {length}+{length} tokens: cached {timings['cached'] * 1e3:.1f} ms/step, "
        f"recomputed {timings['recomputed'] * 1e3:.1f} ms/step; "
        f"recomputed/cached {timings['recomputed'] / timings['cached']:.2f}"
    ]
