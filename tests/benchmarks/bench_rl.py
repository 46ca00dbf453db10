"""Environment frames per second and learner updates per second, DQN against DQN-LR, in one run.

MinAtar's Breakout is stepped with random actions (the raw game through gymnasium), then two
agents play and learn for the same frames, one update per frame after a short random start, on
one thread: DQN with a hard copy every 1,000 frames, and DQN-LR, whose Replicate phase adds 10
Adam steps on the target every 100 frames. Printed: the rates and DQN-LR's over DQN's.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from reprobook.rl.dqn import Agent, DQNConfig
from reprobook.rl.games import make_game

GAME = "breakout"


def game_rate(frames: int) -> float:
    env = make_game(GAME, 0)
    clock = time.perf_counter()
    for _ in range(frames):
        _, _, terminal, _, _ = env.step(env.action_space.sample())
        if terminal:
            env.reset()
    return frames / (time.perf_counter() - clock)


def agent_rates(config: DQNConfig, frames: int) -> tuple[float, float]:
    """Frames per second and learner updates (Lookahead and Replicate steps) per second."""
    agent = Agent(GAME, config, 0)
    for _ in range(config.learning_starts):  # the random start, not timed
        agent.step()
    clock = time.perf_counter()
    for _ in range(frames):
        agent.step()
    elapsed = time.perf_counter() - clock
    replicate_phases = frames // config.target_period if config.target == "lookahead-replicate" else 0
    return frames / elapsed, (frames + replicate_phases * config.k_replicate) / elapsed


def main(quick: bool = False) -> list[str]:
    torch.set_num_threads(1)
    frames = 200 if quick else 5_000
    base = DQNConfig(buffer=10_000, learning_starts=500, epsilon_frames=5_000)
    dqn = agent_rates(base, frames)
    lr = agent_rates(replace(base, target="lookahead-replicate", target_period=100), frames)
    return [
        f"{GAME}: random play {game_rate(10 * frames):.0f} frames/s",
        f"DQN: {dqn[0]:.0f} frames/s, {dqn[1]:.0f} updates/s",
        f"DQN-LR (10 Replicate steps every 100 frames): {lr[0]:.0f} frames/s, {lr[1]:.0f} updates/s"
        f" ({lr[0] / dqn[0]:.2f} x DQN's frames/s)",
    ]
