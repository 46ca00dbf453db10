"""Pretraining throughput of the laboratory models at 1 and 2 threads (tokens per second).

One optimizer step is a forward and backward pass of a batch of random token
windows plus an AdamW update, as in ``reprobook.lm.train``. The ratio tells a
chapter whether a second thread pays off for a model of that size.
"""

from __future__ import annotations

import time

import torch

from reprobook.lm.models import MODEL_SPECS, build_model
from reprobook.lm.train import random_windows


def tokens_per_second(spec, threads: int, steps: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        vocab = 2048 if spec.tokenizer == "char" else int(spec.tokenizer.split("-")[1])
        model = build_model(spec, vocab, 0, seed=0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(0, vocab, (50_000,), generator=generator)
        batch_size = spec.training.batch_size
        elapsed = 0.0
        for step in range(steps + 1):  # the first step warms up and is not timed
            batch = random_windows(tokens, batch_size, spec.context, generator)
            start = time.perf_counter()
            loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            elapsed += (time.perf_counter() - start) if step else 0.0
        return steps * batch_size * spec.context / elapsed
    finally:
        torch.set_num_threads(previous)


def main(quick: bool = False) -> list[str]:
    names = ["lab-micro"] if quick else ["lab-micro", "lab-tiny", "lab-small"]
    steps = 2 if quick else 6
    lines = []
    for name in names:
        spec = MODEL_SPECS[name]
        one, two = tokens_per_second(spec, 1, steps), tokens_per_second(spec, 2, steps)
        lines.append(
            f"{name:10s} 1 thread {one:9.0f} tok/s  2 threads {two:9.0f} tok/s  "
            f"2/1 threads {two / one:5.2f}x  (recipe uses {spec.training.threads})"
        )
    return lines
