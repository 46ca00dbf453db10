"""Exact policy evaluation on small Markov chains with linear values, and its target networks.

Everything here is a *population* update: expectations over the state distribution ``d`` are
computed exactly from the chain's transition matrix, so no sampling noise hides what the
target network does. With features ``Phi`` (one row per state), the online values are
``v_theta = Phi theta`` and the target's ``v_w = Phi w``. The paper's two losses (its Section 3)
are, with ``D = diag(d)``:

    Lookahead  H(theta, w) = 1/2 sum_s d(s) (r(s) + gamma (P Phi w)(s) - (Phi theta)(s))^2
    Replicate  G(theta, w) = 1/2 sum_s d(s) ((Phi theta)(s) - (Phi w)(s))^2

and Lookahead-Replicate (LR) alternates K_L gradient steps on ``theta`` for H (``w`` fixed) with
K_R gradient steps on ``w`` for G (``theta`` fixed). The usual target network replaces the
Replicate phase by the copy ``w <- theta``; a soft (Polyak) target by ``w <- w + tau (theta - w)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reprobook.checks import check_count, check_real

REPLICATE_RULES = ("gradient", "copy", "polyak")


@dataclass(frozen=True)
class LinearChain:
    """A Markov chain under a fixed policy, with linear value features.

    ``transitions[s, s']`` is the probability of moving from s to s', ``rewards[s]`` the expected
    reward on leaving s, ``features[s]`` the feature vector of s, and ``weights[s]`` the share
    d(s) of s in the losses (the on-policy stationary distribution, or any other for
    off-policy evaluation).
    """

    transitions: np.ndarray
    rewards: np.ndarray
    features: np.ndarray
    weights: np.ndarray
    gamma: float

    def __post_init__(self):
        n = len(self.rewards)
        if self.transitions.shape != (n, n) or not np.allclose(self.transitions.sum(axis=1), 1.0):
            raise ValueError(f"transitions must be an {n} x {n} matrix whose rows sum to 1")
        if self.features.ndim != 2 or self.features.shape[0] != n:
            raise ValueError(f"features must have one row per state ({n}), got shape {self.features.shape}")
        if self.weights.shape != (n,) or np.any(self.weights < 0) or not np.isclose(self.weights.sum(), 1.0):
            raise ValueError(f"weights must be a distribution over the {n} states")
        if not 0.0 <= check_real("gamma", self.gamma) < 1.0:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma!r}")

    def values(self, parameters: np.ndarray) -> np.ndarray:
        """The linear values ``Phi parameters`` of every state."""
        return self.features @ parameters

    def true_values(self) -> np.ndarray:
        """The policy's values ``v = (I - gamma P)^{-1} r``, solved exactly."""
        n = len(self.rewards)
        return np.linalg.solve(np.eye(n) - self.gamma * self.transitions, self.rewards)

    def lookahead_loss(self, theta: np.ndarray, w: np.ndarray) -> float:
        """H(theta, w): the squared Bellman error of the online values against the target's."""
        error = self.rewards + self.gamma * self.transitions @ self.values(w) - self.values(theta)
        return 0.5 * float(self.weights @ error**2)

    def lookahead_gradient(self, theta: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The gradient of H in ``theta``: ``-Phi^T D (r + gamma P Phi w - Phi theta)``."""
        error = self.rewards + self.gamma * self.transitions @ self.values(w) - self.values(theta)
        return -self.features.T @ (self.weights * error)

    def replicate_loss(self, theta: np.ndarray, w: np.ndarray) -> float:
        """G(theta, w): the squared gap between the online and the target values."""
        gap = self.values(theta) - self.values(w)
        return 0.5 * float(self.weights @ gap**2)

    def replicate_gradient(self, theta: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The gradient of G in ``w``: ``-Phi^T D (Phi theta - Phi w)``."""
        return -self.features.T @ (self.weights * (self.values(theta) - self.values(w)))


@dataclass(frozen=True)
class TargetRule:
    """How the target follows the online parameters after each Lookahead phase.

    ``gradient``: LR's Replicate, ``k_replicate`` steps of size ``beta`` on G;
    ``copy``: the usual hard copy ``w <- theta``; ``polyak``: ``w <- w + tau (theta - w)``.
    """

    rule: str = "gradient"
    k_lookahead: int = 1
    k_replicate: int = 1
    alpha: float = 0.1
    beta: float = 0.1
    tau: float = 0.005

    def __post_init__(self):
        if self.rule not in REPLICATE_RULES:
            raise ValueError(f"rule must be one of {REPLICATE_RULES}, got {self.rule!r}")
        check_count("k_lookahead", self.k_lookahead)
        check_count("k_replicate", self.k_replicate)
        check_real("alpha", self.alpha, 0.0, open_lower=True)
        check_real("beta", self.beta, 0.0, open_lower=True)
        check_real("tau", self.tau, 0.0, 1.0, open_lower=True)


@dataclass
class Trajectory:
    """The parameters after every outer iteration (row 0: the start)."""

    theta: np.ndarray
    w: np.ndarray

    def parameter_gap(self) -> np.ndarray:
        """``||theta_t - w_t||`` at every iteration."""
        return np.linalg.norm(self.theta - self.w, axis=1)

    def value_gap(self, chain: LinearChain) -> np.ndarray:
        """``max_s |v_theta(s) - v_w(s)|`` at every iteration."""
        return np.abs((self.theta - self.w) @ chain.features.T).max(axis=1)

    def value_error(self, chain: LinearChain) -> np.ndarray:
        """``max_s |v_theta(s) - v(s)|``, the online values' error, at every iteration."""
        return np.abs(self.theta @ chain.features.T - chain.true_values()).max(axis=1)


def lookahead_replicate(
    chain: LinearChain, theta: np.ndarray, w: np.ndarray, rule: TargetRule, iterations: int
) -> Trajectory:
    """Run LR (or a hard or soft target network, per ``rule``) for ``iterations`` outer steps.

    One outer step: K_L Lookahead steps ``theta <- theta - alpha grad_theta H(theta, w)`` with the
    target fixed, then the target's update with ``theta`` fixed. With ``k_lookahead = 1`` and the
    hard copy, each outer step is one step of expected semi-gradient TD(0).
    """
    check_count("iterations", iterations, minimum=0)
    theta, w = np.array(theta, dtype=float), np.array(w, dtype=float)
    thetas, ws = [theta.copy()], [w.copy()]
    for _ in range(iterations):
        for _ in range(rule.k_lookahead):
            theta = theta - rule.alpha * chain.lookahead_gradient(theta, w)
        if rule.rule == "copy":
            w = theta.copy()
        elif rule.rule == "polyak":
            w = w + rule.tau * (theta - w)
        else:
            for _ in range(rule.k_replicate):
                w = w - rule.beta * chain.replicate_gradient(theta, w)
        thetas.append(theta.copy())
        ws.append(w.copy())
    return Trajectory(np.array(thetas), np.array(ws))


def td_zero(chain: LinearChain, theta: np.ndarray, alpha: float, iterations: int) -> np.ndarray:
    """Expected semi-gradient TD(0): ``theta <- theta + alpha Phi^T D (r + gamma P Phi theta - Phi theta)``.

    Written from its textbook form, not through :func:`lookahead_replicate`, so that the two can
    be checked against each other. Returns the parameters after every step (row 0: the start).
    """
    check_count("iterations", iterations, minimum=0)
    theta = np.array(theta, dtype=float)
    history = [theta.copy()]
    for _ in range(iterations):
        values = chain.values(theta)
        td_error = chain.rewards + chain.gamma * chain.transitions @ values - values
        theta = theta + alpha * chain.features.T @ (chain.weights * td_error)
        history.append(theta.copy())
    return np.array(history)


def cyclic_chain(states: int = 3, features: int = 4, gamma: float = 0.9, seed: int = 0) -> LinearChain:
    """The book's small chain: 0.9 x a cycle + 0.1 x uniform jumps, reward 1 on leaving the last state.

    The features are standard normal with more columns than states, so the parameters have a
    null space: different parameters can give the same values.
    """
    check_count("states", states, minimum=2)
    check_count("features", features)
    cycle = np.roll(np.eye(states), 1, axis=1)
    transitions = 0.9 * cycle + 0.1 / states
    rewards = np.zeros(states)
    rewards[-1] = 1.0
    phi = np.random.default_rng(seed).standard_normal((states, features))
    return LinearChain(transitions, rewards, phi, np.full(states, 1.0 / states), gamma)


def baird_chain(gamma: float = 0.99) -> LinearChain:
    """Baird's star (Sutton and Barto, Example 11.1): 7 states, 8 features, zero rewards.

    The target policy always moves to the seventh state; the losses weigh the states uniformly,
    as the behaviour policy visits them. Expected semi-gradient TD with a hard target diverges
    here, although every true value is 0.
    """
    phi = np.zeros((7, 8))
    for s in range(6):
        phi[s, s], phi[s, 7] = 2.0, 1.0
    phi[6, 6], phi[6, 7] = 1.0, 2.0
    transitions = np.zeros((7, 7))
    transitions[:, 6] = 1.0
    return LinearChain(transitions, np.zeros(7), phi, np.full(7, 1.0 / 7), gamma)


BAIRD_START = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 1.0])
