"""ProxSparse: time of the 2:4 prox on every targeted weight against one training step (forward, backward, AdamW).

One ProxSparse step is a training step (forward with labels, backward, gradient clipping,
AdamW) followed by ``prox_24`` on every targeted weight. Both are timed on the laboratory
model (lab-tiny, sequences of 128 tokens, lam = 0.3 as in the chapter) and on one linear
layer of each of Llama-7B's shapes with 4096 tokens per step, the official scripts' batch
(weights ~ N(0, 0.02^2), a squared-output loss, lam = 0.75, so that lam * |w| is about the
same as on the laboratory model). Steps and proxes
alternate as in training; the first are a warm-up (five on the laboratory model, one on the
7B shapes, where a prox takes seconds), so that the prox meets weights it has already
shaped, and each time is the median of the rest.
"""

from __future__ import annotations

import statistics
import time

import torch

from reprobook.lm.lab import load_causal_lm, text_tokens
from reprobook.lm.train import random_windows
from reprobook.sparse import prox_24
from reprobook.sparse.proxsparse import targeted_linears

LAB_LAM = 0.3
LLAMA_LAM = 0.75
LLAMA_SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]
#: Tokens per step at the Llama shapes: the official scripts' batch of one sequence of 4096 tokens.
LLAMA_TOKENS = 4096


def alternate(step, weights, lam, warmup, repeats):
    """Median seconds of a training step and of the prox on ``weights``, alternated as in ProxSparse."""
    times = []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        step()
        middle = time.perf_counter()
        with torch.no_grad():
            for weight in weights:
                weight.copy_(prox_24(weight, lam))
        times.append((middle - start, time.perf_counter() - middle))
    steps, proxes = zip(*times[warmup:])
    return statistics.median(steps), statistics.median(proxes)


def line(label, step, prox, weights, lam):
    groups = sum(weight.numel() for weight in weights) // 4
    return (
        f"{label}: training step {step:8.4f} s  prox {prox:8.4f} s  prox/step {prox / step:6.3f}  "
        f"prox {groups / prox:12,.0f} groups/s ({groups} groups, lam {lam})"
    )


def lab_times(batch_size, warmup, repeats):
    lab = load_causal_lm("lab-tiny", seed=0)
    model = lab.model.train()
    weights = [linear.weight for linear in targeted_linears(model).values()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    tokens = text_tokens(lab.tokenizer, "train")
    generator = torch.Generator().manual_seed(0)
    batches = iter([random_windows(tokens, batch_size, 128, generator) for _ in range(warmup + repeats)])

    def step():
        batch = next(batches)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    seconds = alternate(step, weights, LAB_LAM, warmup, repeats)
    return line(f"lab-tiny, batch {batch_size} x 128 tokens", *seconds, weights, LAB_LAM)


def layer_times(rows, columns, tokens, warmup, repeats):
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(columns, rows, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(rows, columns, generator=generator) * 0.02)
    x = torch.randn(tokens, columns, generator=generator)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3, weight_decay=0.0)

    def step():
        loss = layer(x).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds = alternate(step, [layer.weight], LLAMA_LAM, warmup, repeats)
    return line(f"layer {rows:5d} x {columns:5d}, {tokens} tokens", *seconds, [layer.weight], LLAMA_LAM)


def main(quick: bool = False) -> list[str]:
    torch.manual_seed(0)
    lines = [lab_times(batch_size, warmup=5, repeats=3 if quick else 7) for batch_size in ([1] if quick else [1, 8])]
    for rows, columns in [(256, 256)] if quick else LLAMA_SHAPES:
        lines.append(layer_times(rows, columns, 16 if quick else LLAMA_TOKENS, warmup=1, repeats=3))
    return lines
