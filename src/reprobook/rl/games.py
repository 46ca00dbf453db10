"""MinAtar's five games through gymnasium, seeded so that a run repeats exactly."""

from __future__ import annotations

import gymnasium as gym

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")


def check_game(game: str) -> str:
    """``game`` if it is one of MinAtar's games, else an error that lists them."""
    if game not in GAMES:
        raise ValueError(f"game must be one of MinAtar's {GAMES}, got {game!r}")
    return game


def make_game(game: str, seed: int) -> gym.Env:
    """The gymnasium environment of a MinAtar ``game`` (all 6 actions, sticky actions 0.1).

    It is MinAtar's own ``gymnasium.Env`` (``MinAtar/<Game>-v0``), built directly rather than
    through ``gymnasium.make``, which warns that v0 has a successor: v1 keeps only each game's
    useful actions, and the MinAtar paper's agents choose among all six.

    Both the game's random state (its dynamics and sticky actions) and the action space's
    sampler are seeded: ``reset(seed=...)`` alone would leave ``action_space.sample()`` free.
    """
    from minatar.gym import BaseEnv

    env = BaseEnv(game=check_game(game), use_minimal_action_set=False)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env
