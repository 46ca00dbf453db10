"""A uniform experience-replay buffer in preallocated NumPy arrays (a ring: the oldest goes first)."""

from __future__ import annotations

import numpy as np

from reprobook.checks import check_count


class ReplayBuffer:
    """Transitions ``(state, action, reward, next_state, terminal)`` of fixed-shape boolean states."""

    def __init__(self, capacity: int, state_shape: tuple[int, ...]):
        self.capacity = check_count("capacity", capacity)
        self.states = np.zeros((capacity, *state_shape), dtype=bool)
        self.next_states = np.zeros((capacity, *state_shape), dtype=bool)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminals = np.zeros(capacity, dtype=bool)
        self.size = 0
        self.position = 0

    def add(self, state, action: int, reward: float, next_state, terminal: bool) -> None:
        """Store one transition, overwriting the oldest once the buffer is full."""
        i = self.position
        self.states[i], self.actions[i], self.rewards[i] = state, action, reward
        self.next_states[i], self.terminals[i] = next_state, terminal
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """``batch`` indices drawn uniformly, with replacement, from the stored transitions."""
        check_count("batch", batch)
        if self.size == 0:
            raise ValueError("the replay buffer is empty: add transitions before sampling")
        return rng.integers(0, self.size, size=batch)

    def recent(self, count: int) -> np.ndarray:
        """The indices of the ``count`` most recently stored transitions, newest first."""
        check_count("count", count)
        if count > self.size:
            raise ValueError(f"count must be at most the {self.size} stored transitions, got {count}")
        return (self.position - 1 - np.arange(count)) % self.capacity

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The stored transitions at ``indices``."""
        return {
            "states": self.states[indices],
            "actions": self.actions[indices],
            "rewards": self.rewards[indices],
            "next_states": self.next_states[indices],
            "terminals": self.terminals[indices],
        }
