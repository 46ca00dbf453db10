"""Training windows cut from demonstrations, and the split into training and validation episodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reprobook.imitation.demos import Demonstrations


@dataclass
class Windows:
    """Windows of ``window`` consecutive (state, action) pairs, each labelled with its task."""

    states: torch.Tensor  # (n, window, 39)
    actions: torch.Tensor  # (n, window, 4)
    tasks: list[str]  # the task of each window

    def __len__(self) -> int:
        return len(self.tasks)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        return self.states[rows], self.actions[rows], [self.tasks[row] for row in rows]

    def subset(self, rows: np.ndarray) -> Windows:
        return Windows(*self.batch(rows))


def episode_windows(observations: np.ndarray, actions: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of an episode; the first steps are padded by repeating the first step."""
    steps = np.arange(len(actions))
    rows = np.maximum(steps[:, None] - np.arange(window - 1, -1, -1)[None, :], 0)
    return observations[rows], actions[rows]


def split_episodes(demos: Demonstrations, validation_share: float) -> tuple[list, list]:
    """Training and validation episodes: the last ``validation_share`` of them (at least one) validate."""
    episodes = demos.episodes
    held_out = max(1, round(validation_share * len(episodes))) if len(episodes) > 1 else 0
    return episodes[: len(episodes) - held_out], episodes[len(episodes) - held_out :]


def make_windows(episodes_by_task: dict[str, list], window: int, dtype: torch.dtype) -> Windows:
    """The windows of every episode of every task."""
    states, actions, tasks = [], [], []
    for task, episodes in episodes_by_task.items():
        for observations, taken in episodes:
            s, a = episode_windows(observations, taken, window)
            states.append(s)
            actions.append(a)
            tasks += [task] * len(a)
    return Windows(
        torch.as_tensor(np.concatenate(states), dtype=dtype),
        torch.as_tensor(np.concatenate(actions), dtype=dtype),
        tasks,
    )


def suite_windows(demos: dict[str, Demonstrations], window: int, validation_share: float, dtype: torch.dtype):
    """The training and validation windows of a suite's demonstrations."""
    splits = {task: split_episodes(d, validation_share) for task, d in demos.items()}
    train = make_windows({task: split[0] for task, split in splits.items()}, window, dtype)
    validation = make_windows({task: split[1] for task, split in splits.items()}, window, dtype)
    return train, validation
