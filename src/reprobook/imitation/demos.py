"""Demonstrations from Meta-World's scripted experts, seeded, success-filtered and cached.

A task's demonstrations are the expert's successful episodes from the seeds
``first_seed, first_seed + 1, ...``; a failed episode is skipped and counted, so a task always
gets the number of demonstrations asked for (or a clear error if its expert keeps failing).
Evaluation seeds are drawn from a separate range (:data:`EVALUATION_SEED_BASE`), never used here.

The demonstrations of one task are a cache entry (``.npz``) keyed by everything that fixes
them, with a digest of their arrays stored beside them: a damaged entry fails the check and is
rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reprobook.atomic import atomic_write_bytes
from reprobook.cache import build_once, cache_root, content_key
from reprobook.checks import check_count
from reprobook.imitation.tasks import check_tasks, expert_episode, make_env

EVALUATION_SEED_BASE = 1_000_000  # evaluation episodes use seeds from here on; demonstrations stay below
FORMAT_VERSION = 2  # 2: actions rounded by run_episode


@dataclass
class Demonstrations:
    """The demonstrations of one task: ``episodes`` lists (observations, actions) arrays."""

    task: str
    episodes: list[tuple[np.ndarray, np.ndarray]]
    seeds: list[int]  # the seed of each kept episode
    failures: int  # expert episodes that failed and were skipped

    @property
    def steps(self) -> int:
        return sum(len(actions) for _, actions in self.episodes)


def collect(task: str, count: int, first_seed: int = 0, max_steps: int = 500, max_failures: int = 10) -> Demonstrations:
    """``count`` successful expert episodes of ``task``, from seeds ``first_seed`` upwards."""
    check_count("count", count)
    check_count("max_steps", max_steps)
    if not 0 <= first_seed < EVALUATION_SEED_BASE - count - max_failures:
        raise ValueError(f"first_seed must be in [0, {EVALUATION_SEED_BASE}) minus the episodes, got {first_seed}")
    env = make_env(task)
    episodes, seeds, failures, seed = [], [], 0, first_seed
    while len(episodes) < count:
        episode = expert_episode(env, task, seed, max_steps)
        if episode.success:
            episodes.append((episode.observations, episode.actions))
            seeds.append(seed)
        else:
            failures += 1
            if failures > max_failures:
                raise RuntimeError(f"the expert of {task} failed {failures} times within {max_steps} steps")
        seed += 1
    return Demonstrations(task, episodes, seeds, failures)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _to_arrays(demos: Demonstrations) -> dict[str, np.ndarray]:
    lengths = np.array([len(actions) for _, actions in demos.episodes])
    return {
        "observations": np.concatenate([observations for observations, _ in demos.episodes]),
        "actions": np.concatenate([actions for _, actions in demos.episodes]),
        "lengths": lengths,
        "seeds": np.array(demos.seeds),
        "failures": np.array(demos.failures),
    }


def _from_arrays(task: str, arrays: dict[str, np.ndarray]) -> Demonstrations:
    ends = np.cumsum(arrays["lengths"])
    starts = ends - arrays["lengths"]
    episodes = [(arrays["observations"][a:b], arrays["actions"][a:b]) for a, b in zip(starts, ends, strict=True)]
    return Demonstrations(task, episodes, arrays["seeds"].tolist(), int(arrays["failures"]))


def cache_entry(task: str, count: int, first_seed: int, max_steps: int, cache: str | Path | None = None) -> Path:
    """The file that holds these demonstrations in the book's cache."""
    key = content_key("metaworld-demos", FORMAT_VERSION, task, count, first_seed, max_steps)
    return cache_root(cache) / "imitation" / f"{task}-{key}.npz"


def _read(entry: Path, task: str) -> Demonstrations | None:
    try:
        with np.load(entry) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # missing, truncated or not an archive
        return None
    digest = str(arrays.pop("digest", ""))
    if digest != _digest(arrays):
        return None
    return _from_arrays(task, arrays)


def load(task: str, count: int, first_seed: int = 0, max_steps: int = 500, cache: str | Path | None = None):
    """The demonstrations of :func:`collect`, read from the cache or collected and stored there."""
    entry = cache_entry(task, count, first_seed, max_steps, cache)

    def build() -> None:
        arrays = _to_arrays(collect(task, count, first_seed, max_steps))
        buffer = io.BytesIO()
        np.savez(buffer, digest=np.array(_digest(arrays)), **arrays)
        atomic_write_bytes(entry, buffer.getvalue())

    return build_once(entry, lambda: _read(entry, task), build)


def load_suite(tasks: list[str], count: int, first_seed: int = 0, max_steps: int = 500, cache=None):
    """The demonstrations of every task of a suite, as a dict task -> :class:`Demonstrations`."""
    tasks = check_tasks(tasks)
    return {task: load(task, count, first_seed, max_steps, cache) for task in tasks}
