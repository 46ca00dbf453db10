"""Simulator steps per second (expert and policy) and training steps per second of each adaptation method.

Meta-World's push task is stepped by its scripted expert and by the chapter's policy (a GPT-2
decoder over 4 states, float64, one thread), which pays a forward pass per step. Then one
training step of each method is timed on random windows: FFT, ER (half the batch replayed), EWC
(plus its penalty), FPF (the task head only) and the three TAIL adapters. Printed: the rates
and each method's rate over FFT's, in one run.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from reprobook.imitation.adapters import add_adapter
from reprobook.imitation.continual import ElasticPenalty, Suite, suite_parameters
from reprobook.imitation.policy import BCPolicy, PolicyConfig
from reprobook.imitation.tasks import expert_episode, make_env, run_episode
from reprobook.imitation.training import TrainingConfig, train
from reprobook.imitation.windows import Windows

TASK = "push-v3"


def simulator_rates(episodes: int) -> tuple[float, float, BCPolicy]:
    env = make_env(TASK)
    torch.manual_seed(0)
    policy = BCPolicy(PolicyConfig(), [TASK]).double()
    rates = []
    for act in (None, lambda history: policy.act(history, TASK)):
        clock, steps = time.perf_counter(), 0
        for seed in range(episodes):
            if act is None:
                steps += len(expert_episode(env, TASK, seed, 500).actions)
            else:
                steps += len(run_episode(env, act, seed, 100).actions)
        rates.append(steps / (time.perf_counter() - clock))
    return rates[0], rates[1], policy


def training_rates(policy: BCPolicy, steps: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    windows = Windows(
        torch.randn(512, 4, 39, generator=generator, dtype=torch.float64),
        torch.randn(512, 4, 4, generator=generator, dtype=torch.float64).clamp(-1, 1),
        [TASK] * 512,
    )
    config = TrainingConfig(steps=steps, batch=32, log_every=10**9)
    rates = {}
    for method in ("fft", "er", "ewc", "fpf", "tail-lora", "tail-prefix", "tail-bottleneck"):
        model = copy.deepcopy(policy)
        if method.startswith("tail-"):
            add_adapter(model, method.removeprefix("tail-"))
        penalty = None
        if method == "ewc":
            penalty = ElasticPenalty(100.0)
            penalty.consolidate(model, Suite("old", [TASK], windows, windows), 2, 32, np.random.default_rng(0))
        clock = time.perf_counter()
        train(
            model,
            suite_parameters(model, method),
            windows,
            windows.subset(np.arange(8)),
            config,
            np.random.default_rng(0),
            penalty=penalty.penalty if penalty else None,
            replay=windows if method == "er" else None,
        )
        rates[method] = steps / (time.perf_counter() - clock)
    return rates


def main(quick: bool = False) -> list[str]:
    expert_rate, policy_rate, policy = simulator_rates(1 if quick else 5)
    rates = training_rates(policy, 3 if quick else 100)
    lines = [f"{TASK}: expert {expert_rate:.0f} simulator steps/s, policy {policy_rate:.0f} simulator steps/s"]
    lines += [
        f"{method}: {rate:.1f} training steps/s ({rate / rates['fft']:.2f} x FFT)" for method, rate in rates.items()
    ]
    return lines
