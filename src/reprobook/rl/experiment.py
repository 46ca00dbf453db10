"""Many runs (games, settings, seeds) in worker processes of one thread each, resumable."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import torch

from reprobook.cache import content_key
from reprobook.checks import check_count
from reprobook.cpu_backends import use_model_independent_backends
from reprobook.rl.dqn import AgentRun, DQNConfig, train
from reprobook.rl.games import check_game


def checkpoint_path(folder: str | Path, game: str, config: DQNConfig, seed: int) -> Path:
    """Where a run's checkpoint lives: named by everything but its frame budget, which may grow."""
    settings = asdict(replace(config, frames=1))
    return Path(folder) / f"{game}-{config.target}-seed{seed}-{content_key(game, seed, settings)}.pt"


def _train_one(game: str, config: DQNConfig, seed: int, checkpoint: Path | None) -> AgentRun:
    torch.set_num_threads(1)  # a tiny network: one thread is several times faster than two
    use_model_independent_backends()  # a spawned process starts with PyTorch's defaults
    return train(game, config, seed, checkpoint)


def train_runs(
    runs: list[tuple[str, DQNConfig, int]],
    workers: int = 1,
    checkpoint_folder: str | Path | None = None,
) -> list[AgentRun]:
    """Train each ``(game, config, seed)`` in ``runs``, ``workers`` at a time, one thread each.

    The runs go to ``workers`` processes started afresh (spawned, so nothing is inherited but the
    environment variables); a process takes the next run when its last one ends, and each run
    seeds every generator it uses, so its result does not depend on the runs before it in the
    same process (tested). With ``checkpoint_folder``, each run saves itself there and a rerun
    resumes where it stopped.
    """
    check_count("workers", workers)
    if not runs or len(set(runs)) != len(runs):
        raise ValueError(f"runs must be distinct (game, config, seed) triples, at least one, got {len(runs)}")
    for game, _, _ in runs:
        check_game(game)
    games, configs, seeds = zip(*runs, strict=True)
    checkpoints = [None if checkpoint_folder is None else checkpoint_path(checkpoint_folder, *run) for run in runs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_train_one, games, configs, seeds, checkpoints))
