"""MADA: time per training step and memory against torch.optim.Adam, on the laboratory architectures.

A training step is a forward pass with labels, the backward pass and the optimizer's step, on
a fresh model of each architecture (lab-micro, the MADA chapter's; lab-tiny, four times wider).
MADA learns all six coefficients (the official GPT-2 hyper-learning rates), so every step after
the first recomputes the last update with its graph and takes the hypergradient; HyperAdam
learns two. Each time is the median over the repeats after a warm-up. Memory is the optimizer's
state (every tensor it keeps between steps, MADA's coefficients included) and the peak memory
one step adds, measured by ``reprobook.resources.measure``.
"""

from __future__ import annotations

import statistics
import time

import torch

from reprobook.lm.models import build_model, get_spec
from reprobook.lm.train import _parameter_groups
from reprobook.optim.adaptive import make_optimizer
from reprobook.optim.mada import PAPER_HYPER_LR
from reprobook.resources import measure

VOCABULARY = 128


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps between steps."""

    def tensors(value):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from tensors(item)

    return sum(t.numel() * t.element_size() for t in tensors(optimizer.state_dict()["state"]))


def step_costs(name: str, model_name: str, batch_size: int, warmup: int, repeats: int) -> dict[str, float]:
    spec = get_spec(model_name)
    model = build_model(spec, VOCABULARY, 0, seed=0)
    options = {"hyper_lr": PAPER_HYPER_LR} if name == "mada" else {}
    optimizer = make_optimizer(name, _parameter_groups(model, 0.1), 1e-3, **options)
    generator = torch.Generator().manual_seed(0)
    batch = torch.randint(0, VOCABULARY, (batch_size, spec.context), generator=generator)
    whole, update = [], []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        middle = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        whole.append(end - start)
        update.append(end - middle)
    loss = model(input_ids=batch, labels=batch).loss
    optimizer.zero_grad()
    loss.backward()
    _, cost = measure(optimizer.step)
    return {
        "step": statistics.median(whole[warmup:]),
        "update": statistics.median(update[warmup:]),
        "state": state_bytes(optimizer),
        "peak": cost.peak_bytes,
    }


def main(quick: bool = False) -> list[str]:
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    lines = []
    try:
        for model_name, batch_size in [("lab-micro", 16)] if quick else [("lab-micro", 16), ("lab-tiny", 16)]:
            costs = {
                name: step_costs(name, model_name, batch_size, warmup=3, repeats=5 if quick else 30)
                for name in ("adam", "hyperadam", "mada")
            }
            adam = costs["adam"]
            for name in ("hyperadam", "mada"):
                c = costs[name]
                lines.append(
                    f"{model_name}, batch {batch_size}: {name} / adam per training step "
                    f"{c['step'] / adam['step']:.2f} ({c['step'] * 1e3:.1f} ms vs {adam['step'] * 1e3:.1f} ms); "
                    f"optimizer step alone {c['update'] / adam['update']:.1f}; "
                    f"state {c['state'] / adam['state']:.1f} ({c['state'] / 2**20:.2f} MiB vs "
                    f"{adam['state'] / 2**20:.2f} MiB); peak of one step {c['peak'] / 2**20:.1f} MiB vs "
                    f"{adam['peak'] / 2**20:.1f} MiB"
                )
    finally:
        torch.set_num_threads(previous)
    return lines


if __name__ == "__main__":
    for line in main():
        print(line)
