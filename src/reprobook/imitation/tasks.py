"""Meta-World tasks as the chapter's benchmark: environments, scripted experts and episodes.

The ``metaworld`` package ships the simulator's assets and one scripted expert per task, so the
benchmark runs offline (LIBERO, the paper's benchmark, downloads its assets and human
demonstrations from a hub). Observations are Meta-World's 39 state features with the goal
visible; actions are 4 numbers in [-1, 1].

An episode's initial state (object and goal positions) is drawn by the book, from a NumPy
generator seeded with the episode's seed, and frozen into the environment before the reset:
Meta-World's own ``reset`` ignores its seed and would otherwise draw from NumPy's global state.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

OBSERVATION_DIM = 39
ACTION_DIM = 4
#: Actions are rounded to this many decimals before the simulator steps (see :func:`run_episode`).
ACTION_DECIMALS = 3


@cache
def task_names() -> tuple[str, ...]:
    """The 50 Meta-World tasks, such as ``"reach-v3"``, in alphabetical order."""
    import metaworld

    suffix = "-goal-observable"
    return tuple(sorted(name.removesuffix(suffix) for name in metaworld.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE))


def check_tasks(tasks: Sequence[str], parameter: str = "tasks") -> list[str]:
    """``tasks`` as a list, after checking that it is a non-empty list of distinct known task names."""
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise ValueError(f"{parameter} must be a list of Meta-World task names, got {tasks!r}")
    if len(tasks) == 0:
        raise ValueError(f"{parameter} must name at least one task; it is empty")
    unknown = [task for task in tasks if task not in task_names()]
    if unknown:
        raise ValueError(f"{parameter} names unknown Meta-World tasks {unknown}; known tasks are {list(task_names())}")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"{parameter} names a task twice: {list(tasks)}")
    return list(tasks)


def make_env(task: str):
    """A Meta-World environment of ``task`` with the goal in the observation."""
    import metaworld

    check_tasks([task], "task")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's notices about the environment's checker
        return metaworld.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{task}-goal-observable"](seed=0)


def expert(task: str):
    """The scripted expert that ships with Meta-World for ``task``."""
    import metaworld.policies

    check_tasks([task], "task")
    words = task.removesuffix("-v3").split("-")
    name = "".join(word.capitalize() for word in words)
    name = {"PegInsertSide": "PegInsertionSide"}.get(name, name)  # the one class not named after its task
    return getattr(metaworld.policies, f"Sawyer{name}V3Policy")()


def reset(env, seed: int) -> np.ndarray:
    """Reset ``env`` to the initial state drawn from ``seed`` (the same on every machine)."""
    space = env._random_reset_space
    env._last_rand_vec = np.random.default_rng(seed).uniform(space.low, space.high)
    env._freeze_rand_vec = True
    observation, _ = env.reset()
    return observation


@dataclass
class Episode:
    """One episode: the observations seen, the actions taken, and whether the task was solved."""

    observations: np.ndarray  # (steps, 39)
    actions: np.ndarray  # (steps, 4)
    success: bool


def run_episode(env, act: Callable[[np.ndarray], np.ndarray], seed: int, max_steps: int) -> Episode:
    """Run ``act`` (the history of observations -> an action) from seed ``seed`` until success or ``max_steps``.

    ``act`` receives every observation of the episode so far, oldest first, so that a policy over
    a window of past states can take its window. Its action is clipped to [-1, 1] and rounded to
    ``ACTION_DECIMALS`` decimals (the hand's target then moves on a grid of 10 micrometres): two
    CPUs whose arithmetic rounds differently give policies that differ in the last bits, and the
    rounding keeps their episodes identical, where a closed loop could otherwise amplify the
    difference into another outcome.
    """
    observation = reset(env, seed)
    observations, actions = [], []
    success = False
    for _ in range(max_steps):
        observations.append(observation)
        action = np.clip(np.asarray(act(np.stack(observations)), dtype=np.float64), -1.0, 1.0)
        action = np.round(action, ACTION_DECIMALS)
        actions.append(action)
        observation, _, _, _, info = env.step(action)
        if info["success"]:
            success = True
            break
    return Episode(np.stack(observations), np.stack(actions), success)


def expert_episode(env, task: str, seed: int, max_steps: int) -> Episode:
    """An episode of ``task``'s scripted expert from seed ``seed``."""
    policy = expert(task)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Constant", category=UserWarning)  # the experts' own notice
        return run_episode(env, lambda history: policy.get_action(history[-1]), seed, max_steps)
