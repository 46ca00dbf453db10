"""DQN on MinAtar with three target networks: the hard copy, Polyak averaging and Lookahead-Replicate.

The online network ``Q_theta`` learns from replayed transitions with the loss

    L(theta) = mean over the batch of (r + gamma (1 - terminal) max_a' Q_w(s', a') - Q_theta(s, a))^2

(the Lookahead step, the target ``w`` fixed). The target follows in one of three ways:
- ``copy``: ``w <- theta`` every ``target_period`` frames (DQN);
- ``polyak``: ``w <- (1 - tau) w + tau theta`` after every update;
- ``lookahead-replicate``: every ``target_period`` frames, ``k_replicate`` Adam steps on the
  Replicate loss ``mean over replayed states of sum_a (Q_theta(s, a) - Q_w(s, a))^2`` in ``w``,
  ``theta`` fixed: the target matches the online network in function space, not in parameters.

A run can stop and resume from its checkpoint with the same result: the checkpoint holds the
networks, both optimizers, the replay buffer, every random generator and the game's own state.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from reprobook.atomic import atomic_torch_save
from reprobook.checks import check_count, check_real
from reprobook.rl.games import check_game, make_game
from reprobook.rl.replay import ReplayBuffer

TARGETS = ("copy", "polyak", "lookahead-replicate")
ACTIONS = 6
EVALUATION_FRAMES = 10_000  # an evaluation episode stops here if the game has not ended


@dataclass(frozen=True)
class DQNConfig:
    """A DQN run (defaults: the MinAtar paper's DQN, with Adam, at a shorter budget)."""

    frames: int = 100_000
    target: str = "copy"
    buffer: int = 100_000
    batch: int = 32
    learning_rate: float = 2.5e-4
    gamma: float = 0.99
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    epsilon_frames: int = 100_000  # frames over which epsilon falls linearly
    learning_starts: int = 5_000  # frames of random play before the first update
    train_every: int = 1  # frames between updates of the online network
    target_period: int = 1_000  # frames between target updates (copy and lookahead-replicate)
    tau: float = 0.005  # Polyak's share per update
    k_replicate: int = 10  # Adam steps of each Replicate phase
    replicate_learning_rate: float = 2.5e-4
    hidden: int = 128
    log_every: int = 1_000  # frames between measurements of the function-space gap
    probe: int = 256  # the most recently stored states, on which the gap is measured
    evaluate_every: int = 10_000  # frames between evaluations of the online network
    evaluation_episodes: int = 5  # episodes of each evaluation, on a game of their own
    evaluation_epsilon: float = 0.01  # exploration while evaluating (0 is greedy)

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        for name in ("frames", "buffer", "batch", "epsilon_frames", "train_every", "target_period"):
            check_count(name, getattr(self, name))
        for name in ("k_replicate", "hidden", "log_every", "probe", "evaluate_every", "evaluation_episodes"):
            check_count(name, getattr(self, name))
        check_count("learning_starts", self.learning_starts, minimum=0)
        for name in ("learning_rate", "replicate_learning_rate"):
            check_real(name, getattr(self, name), 0.0, open_lower=True)
        check_real("gamma", self.gamma, 0.0, 1.0)
        check_real("tau", self.tau, 0.0, 1.0, open_lower=True)
        check_real("epsilon_end", self.epsilon_end, 0.0, 1.0)
        check_real("evaluation_epsilon", self.evaluation_epsilon, 0.0, 1.0)
        check_real("epsilon_start", self.epsilon_start, self.epsilon_end, 1.0)

    def epsilon(self, frame: int) -> float:
        """The exploration rate at ``frame``: linear from ``epsilon_start`` to ``epsilon_end``."""
        share = min(1.0, frame / self.epsilon_frames)
        return self.epsilon_start + share * (self.epsilon_end - self.epsilon_start)


class QNetwork(nn.Module):
    """The MinAtar paper's network: a 3x3 convolution with 16 channels, 128 hidden units, 6 values."""

    def __init__(self, channels: int, hidden: int = 128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * 8 * 8, hidden),
            nn.ReLU(),
            nn.Linear(hidden, ACTIONS),
        )

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Action values of boolean states shaped (batch, 10, 10, channels)."""
        return self.layers(states.permute(0, 3, 1, 2).float())


def function_gap(online: nn.Module, target: nn.Module, states: torch.Tensor) -> float:
    """``E_s sum_a (Q_theta(s, a) - Q_w(s, a))^2`` over ``states``: the Replicate loss."""
    with torch.no_grad():
        return float(((online(states) - target(states)) ** 2).sum(dim=1).mean())


def parameter_distance(online: nn.Module, target: nn.Module) -> float:
    """``||theta - w||``, over all parameters."""
    with torch.no_grad():
        return float(sum(((a - b) ** 2).sum() for a, b in zip(online.parameters(), target.parameters())) ** 0.5)


@dataclass
class AgentRun:
    """What a run leaves: its episodes' returns and the gap between online and target networks."""

    game: str
    seed: int
    config: DQNConfig
    episodes: pd.DataFrame  # frame at which each training episode ended, and its return
    gaps: pd.DataFrame  # frame, function-space gap, parameter distance
    evaluations: pd.DataFrame  # frame of each evaluation, and the mean return of its episodes


class Agent:
    """The state of one run: networks, optimizers, replay, generators, the game and the logs."""

    def __init__(self, game: str, config: DQNConfig, seed: int):
        self.game, self.config, self.seed = check_game(game), config, seed
        torch.manual_seed(seed)
        self.env = make_game(game, seed)
        self.state, _ = self.env.reset(seed=seed)
        channels = self.state.shape[-1]
        self.online = QNetwork(channels, config.hidden)
        self.target = QNetwork(channels, config.hidden)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate)
        self.replicator = torch.optim.Adam(self.target.parameters(), lr=config.replicate_learning_rate)
        self.replay = ReplayBuffer(config.buffer, self.state.shape)
        self.rng = np.random.default_rng(seed)
        self.frame, self.episode_return = 0, 0.0
        self.episodes: list[tuple[int, float]] = []
        self.gaps: list[tuple[int, float, float]] = []
        self.evaluations: list[tuple[int, float]] = []

    # --- acting and learning ------------------------------------------------------------------

    def act(self) -> int:
        """An epsilon-greedy action in the current state."""
        return self.policy(self.state, self.config.epsilon(self.frame), self.rng)

    def policy(self, state: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
        """The online network's epsilon-greedy action in ``state``."""
        if rng.random() < epsilon:
            return int(rng.integers(ACTIONS))
        with torch.no_grad():
            return int(self.online(torch.as_tensor(state[None])).argmax())

    def evaluate(self) -> float:
        """Mean return of ``evaluation_episodes`` episodes of the online network.

        They run on a game and a generator of their own, seeded by the run's seed and the frame,
        so an evaluation neither changes the training run nor depends on when it was resumed.
        """
        config = self.config
        rng = np.random.default_rng([self.seed, self.frame])
        returns = play(
            self.game,
            lambda state: self.policy(state, config.evaluation_epsilon, rng),
            config.evaluation_episodes,
            rng,
        )
        return float(np.mean(returns))

    def replayed(self, size: int) -> dict[str, torch.Tensor]:
        """A uniform minibatch of stored transitions, as tensors."""
        batch = self.replay.batch(self.replay.sample_indices(size, self.rng))
        return {key: torch.as_tensor(value) for key, value in batch.items()}

    def lookahead_step(self) -> None:
        """One Adam step on the TD loss, the target network fixed."""
        batch = self.replayed(self.config.batch)
        with torch.no_grad():
            best_next = self.target(batch["next_states"]).max(dim=1).values
            goal = batch["rewards"] + self.config.gamma * (~batch["terminals"]) * best_next
        values = self.online(batch["states"]).gather(1, batch["actions"][:, None])[:, 0]
        loss = ((goal - values) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def replicate(self) -> None:
        """``k_replicate`` Adam steps that bring ``Q_w`` to ``Q_theta`` on replayed states."""
        for _ in range(self.config.k_replicate):
            states = self.replayed(self.config.batch)["states"]
            with torch.no_grad():
                goal = self.online(states)
            loss = ((self.target(states) - goal) ** 2).sum(dim=1).mean()
            self.replicator.zero_grad()
            loss.backward()
            self.replicator.step()

    def update_target(self, updated: bool) -> None:
        """The target's move after this frame, by the configured rule."""
        config = self.config
        period_ends = (self.frame + 1) % config.target_period == 0 and self.frame >= config.learning_starts
        if config.target == "polyak" and updated:
            with torch.no_grad():
                for w, theta in zip(self.target.parameters(), self.online.parameters()):
                    w.lerp_(theta, config.tau)
        elif config.target == "copy" and period_ends:
            self.target.load_state_dict(self.online.state_dict())
        elif config.target == "lookahead-replicate" and period_ends:
            self.replicate()

    def step(self) -> None:
        """One frame: act, store, learn, move the target, log."""
        config = self.config
        action = self.act()
        next_state, reward, terminal, truncated, _ = self.env.step(action)
        self.replay.add(self.state, action, reward, next_state, terminal)
        self.episode_return += reward
        if terminal or truncated:
            self.episodes.append((self.frame + 1, self.episode_return))
            self.episode_return = 0.0
            next_state, _ = self.env.reset()
        self.state = next_state
        updated = self.frame >= config.learning_starts and self.frame % config.train_every == 0
        if updated:
            self.lookahead_step()
        self.update_target(updated)
        if (self.frame + 1) % config.log_every == 0 and self.replay.size:
            probe = torch.as_tensor(self.replay.states[self.replay.recent(min(config.probe, self.replay.size))])
            gap = function_gap(self.online, self.target, probe)
            self.gaps.append((self.frame + 1, gap, parameter_distance(self.online, self.target)))
        self.frame += 1
        if self.frame % config.evaluate_every == 0:
            self.evaluations.append((self.frame, self.evaluate()))

    def result(self) -> AgentRun:
        """The run's logs so far."""
        return AgentRun(
            self.game,
            self.seed,
            self.config,
            pd.DataFrame(self.episodes, columns=["frame", "return"]),
            pd.DataFrame(self.gaps, columns=["frame", "function_gap", "parameter_distance"]),
            pd.DataFrame(self.evaluations, columns=["frame", "return"]),
        )

    # --- checkpoints ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write everything the run needs to continue, atomically."""
        state = {
            "game": self.game,
            "seed": self.seed,
            "config": asdict(self.config),
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replicator": self.replicator.state_dict(),
            "replay": vars(self.replay),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "game_state": pickle.dumps(self.env.unwrapped.game),
            "action_space_rng": self.env.action_space.np_random.bit_generator.state,
            "current": (self.state, self.frame, self.episode_return, self.episodes, self.gaps, self.evaluations),
        }
        atomic_torch_save(path, state)

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same game, seed and settings (``frames`` may grow)."""
        state = torch.load(path, weights_only=False)
        saved = replace(DQNConfig(**state["config"]), frames=self.config.frames)
        if (state["game"], state["seed"], saved) != (self.game, self.seed, self.config):
            raise ValueError(f"the checkpoint {Path(path).name} is of another run (game, seed or settings differ)")
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replicator.load_state_dict(state["replicator"])
        vars(self.replay).update(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.env.unwrapped.game = pickle.loads(state["game_state"])
        self.env.action_space.np_random.bit_generator.state = state["action_space_rng"]
        (self.state, self.frame, self.episode_return, self.episodes, self.gaps, self.evaluations) = state["current"]


def play(game: str, policy, episodes: int, rng: np.random.Generator) -> list[float]:
    """The returns of ``episodes`` episodes of ``game`` played by ``policy(state) -> action``, on
    a game seeded from ``rng`` (each stops after ``EVALUATION_FRAMES`` frames if not over)."""
    env = make_game(game, int(rng.integers(2**31)))
    returns = []
    for _ in range(check_count("episodes", episodes)):
        state, _ = env.reset()
        total, done, frames = 0.0, False, 0
        while not done and frames < EVALUATION_FRAMES:
            state, reward, terminal, truncated, _ = env.step(policy(state))
            total, done, frames = total + reward, terminal or truncated, frames + 1
        returns.append(total)
    return returns


def random_play(game: str, episodes: int, seed: int) -> list[float]:
    """The returns of uniformly random actions in the evaluation loop: the level below which an
    agent has learned nothing."""
    rng = np.random.default_rng([seed, 1_000_003])
    return play(game, lambda state: int(rng.integers(ACTIONS)), episodes, rng)


def train(
    game: str,
    config: DQNConfig,
    seed: int,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 10_000,
) -> AgentRun:
    """Run ``config.frames`` frames of DQN on ``game``, resuming from ``checkpoint`` if it exists.

    With a checkpoint path, the run is saved every ``checkpoint_every`` frames and at its end; a
    run started again after an interruption continues from the last save and ends exactly as an
    uninterrupted one.
    """
    check_count("checkpoint_every", checkpoint_every)
    agent = Agent(game, config, seed)
    if checkpoint is not None and Path(checkpoint).exists():
        agent.load(checkpoint)
    while agent.frame < config.frames:
        agent.step()
        if checkpoint is not None and (agent.frame % checkpoint_every == 0 or agent.frame == config.frames):
            agent.save(checkpoint)
    return agent.result()
