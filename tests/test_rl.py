"""reprobook.rl: target networks on exact Markov chains and in DQN on MinAtar."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from reprobook.rl.chains import (
    BAIRD_START,
    LinearChain,
    TargetRule,
    baird_chain,
    cyclic_chain,
    lookahead_replicate,
    td_zero,
)
from reprobook.rl.dqn import TARGETS, Agent, DQNConfig, function_gap, random_play, train
from reprobook.rl.experiment import train_runs
from reprobook.rl.games import make_game
from reprobook.rl.replay import ReplayBuffer
from reprobook.rl.stats import iqm, iqm_difference_interval, iqm_interval


@pytest.fixture
def chain():
    return cyclic_chain(states=3, features=4, gamma=0.9, seed=0)


@pytest.fixture
def start():
    rng = np.random.default_rng(1)
    return rng.standard_normal(4), rng.standard_normal(4)


def central_difference(f, x, h=1e-6):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))])


def test_the_gradients_match_finite_differences(chain, start):
    theta, w = start
    assert chain.lookahead_gradient(theta, w) == pytest.approx(
        central_difference(lambda t: chain.lookahead_loss(t, w), theta), abs=1e-8
    )
    assert chain.replicate_gradient(theta, w) == pytest.approx(
        central_difference(lambda v: chain.replicate_loss(theta, v), w), abs=1e-8
    )


def test_the_true_values_solve_the_bellman_equation(chain):
    v = chain.true_values()
    assert v == pytest.approx(chain.rewards + chain.gamma * chain.transitions @ v, abs=1e-12)


def test_one_lookahead_step_and_a_hard_copy_is_td_step_by_step(chain, start):
    theta, _ = start
    lr = lookahead_replicate(chain, theta, theta, TargetRule("copy", k_lookahead=1, alpha=0.3), 50)
    td = td_zero(chain, theta, 0.3, 50)
    # the same arithmetic in another order: equal up to round-off, at every step
    assert np.abs(lr.theta - td).max() < 1e-13
    assert np.array_equal(lr.w, lr.theta)


def test_lr_matches_values_while_the_parameters_stay_apart(chain, start):
    theta, w = start
    rule = TargetRule("gradient", k_lookahead=20, k_replicate=20, alpha=0.5, beta=0.5)
    run = lookahead_replicate(chain, theta, w, rule, 300)
    assert run.value_error(chain)[-1] < 1e-9
    assert run.value_gap(chain)[-1] < 1e-10
    # the updates move theta and w only in the row space of Phi: the null-space part of their
    # difference never changes, and it is all that is left once the values agree
    null = scipy.linalg.null_space(chain.features)
    kept = np.linalg.norm(null.T @ (theta - w))
    assert kept > 0.5
    assert run.parameter_gap()[-1] == pytest.approx(kept, rel=1e-8)


def test_the_hard_copy_reaches_the_same_values_with_equal_parameters(chain, start):
    theta, w = start
    run = lookahead_replicate(chain, theta, w, TargetRule("copy", k_lookahead=20, alpha=0.5), 300)
    assert run.value_error(chain)[-1] < 1e-9
    assert np.all(run.parameter_gap()[1:] == 0.0)


def test_a_small_replicate_step_decreases_the_replicate_loss_at_every_step(chain, start):
    theta, w = start
    curvature = np.linalg.eigvalsh(chain.features.T @ np.diag(chain.weights) @ chain.features).max()
    beta = 1.0 / curvature  # below 2 / L, the usual gradient-descent bound
    losses = [chain.replicate_loss(theta, w)]
    for _ in range(30):
        w = w - beta * chain.replicate_gradient(theta, w)
        losses.append(chain.replicate_loss(theta, w))
    assert np.all(np.diff(losses) < 0)
    w = start[1]
    for _ in range(30):  # beyond 2 / L the gap along the top eigenvector grows 1.5 times a step
        w = w - 2.5 / curvature * chain.replicate_gradient(theta, w)
    assert chain.replicate_loss(theta, w) > losses[0]


def test_the_polyak_target_moves_a_share_tau_of_the_way(chain, start):
    theta, w = start
    rule = TargetRule("polyak", k_lookahead=1, alpha=0.2, tau=0.25)
    run = lookahead_replicate(chain, theta, w, rule, 1)
    assert run.w[1] == pytest.approx(0.75 * w + 0.25 * run.theta[1], abs=1e-15)


def test_td_with_a_hard_target_diverges_on_bairds_star():
    star = baird_chain()
    assert star.true_values() == pytest.approx(np.zeros(7))
    run = lookahead_replicate(star, BAIRD_START, BAIRD_START, TargetRule("copy", alpha=0.01), 2000)
    error = run.value_error(star)
    assert error[-1] > 100 * error[0]


@pytest.mark.parametrize(
    "keyword, value, message",
    [
        ("rule", "average", "rule must be one of"),
        ("k_lookahead", 0, "k_lookahead must be an integer >= 1"),
        ("k_replicate", -2, "k_replicate must be an integer >= 1"),
        ("alpha", 0.0, "alpha must be"),
        ("beta", -0.1, "beta must be"),
        ("tau", 1.5, "tau must be"),
    ],
)
def test_bad_target_rules_are_named(keyword, value, message):
    with pytest.raises(ValueError, match=message):
        TargetRule(**{keyword: value})


def test_bad_chains_are_named(chain):
    with pytest.raises(ValueError, match="rows sum to 1"):
        LinearChain(chain.transitions * 0.5, chain.rewards, chain.features, chain.weights, 0.9)
    with pytest.raises(ValueError, match="one row per state"):
        LinearChain(chain.transitions, chain.rewards, chain.features[:2], chain.weights, 0.9)
    with pytest.raises(ValueError, match="gamma must lie in"):
        LinearChain(chain.transitions, chain.rewards, chain.features, chain.weights, 1.0)
    with pytest.raises(ValueError, match="iterations must be an integer >= 0"):
        lookahead_replicate(chain, np.zeros(4), np.zeros(4), TargetRule(), -1)


# --- MinAtar, replay and DQN ---------------------------------------------------------------------


def test_a_seeded_game_repeats_its_frames_and_random_actions():
    def play(seed):
        env = make_game("breakout", seed)
        trace = []
        for _ in range(300):
            state, reward, terminal, _, _ = env.step(env.action_space.sample())
            trace.append((reward, terminal, state.tobytes()))
            if terminal:
                env.reset()
        return trace

    assert play(3) == play(3)
    assert play(3) != play(4)


def test_unknown_games_are_named():
    with pytest.raises(ValueError, match="game must be one of MinAtar's"):
        make_game("pong", 0)
    with pytest.raises(ValueError, match="game must be one of MinAtar's"):
        train("pong", TINY, 0)


def test_the_replay_buffer_samples_uniformly_and_overwrites_the_oldest():
    buffer = ReplayBuffer(capacity=50, state_shape=(2,))
    for i in range(70):  # the first 20 transitions are overwritten
        buffer.add(np.zeros(2), i, 0.0, np.zeros(2), False)
    assert buffer.size == 50 and sorted(buffer.actions) == list(range(20, 70))
    drawn = buffer.batch(buffer.sample_indices(50_000, np.random.default_rng(0)))["actions"]
    counts = np.bincount(drawn - 20, minlength=50)
    assert scipy.stats.chisquare(counts).pvalue > 0.01
    with pytest.raises(ValueError, match="the replay buffer is empty"):
        ReplayBuffer(4, (2,)).sample_indices(1, np.random.default_rng(0))
    # the most recent transitions, newest first, across the ring's end
    assert list(buffer.actions[buffer.recent(5)]) == [69, 68, 67, 66, 65]
    assert sorted(buffer.actions[buffer.recent(50)]) == list(range(20, 70))
    with pytest.raises(ValueError, match="count must be at most the 50 stored"):
        buffer.recent(51)


TINY = DQNConfig(
    frames=600,
    buffer=1000,
    learning_starts=100,
    epsilon_frames=500,
    target_period=100,
    log_every=200,
    probe=64,
    k_replicate=3,
    evaluate_every=300,
    evaluation_episodes=2,
    train_every=2,
)


@pytest.mark.parametrize("target", ["copy", "polyak", "lookahead-replicate"])
def test_a_resumed_run_ends_as_an_uninterrupted_one(target, tmp_path):
    config = replace(TINY, target=target)
    straight = train("breakout", config, 1)
    checkpoint = tmp_path / "run.pt"
    train("breakout", replace(config, frames=350), 1, checkpoint, checkpoint_every=150)  # "interrupted"
    resumed = train("breakout", config, 1, checkpoint)
    assert resumed.episodes.equals(straight.episodes)
    assert resumed.gaps.equals(straight.gaps)
    assert resumed.evaluations.equals(straight.evaluations)
    assert len(straight.gaps) == 3 and straight.evaluations["frame"].tolist() == [300, 600]
    with pytest.raises(ValueError, match="is of another run"):
        train("breakout", replace(config, k_replicate=4), 1, checkpoint)


def test_evaluations_leave_the_training_run_unchanged():
    rare = train("breakout", replace(TINY, evaluate_every=10_000), 3)
    often = train("breakout", replace(TINY, evaluate_every=100, evaluation_episodes=2), 3)
    assert rare.episodes.equals(often.episodes) and rare.gaps.equals(often.gaps)
    assert rare.evaluations.empty and often.evaluations["frame"].tolist() == list(range(100, 601, 100))
    # evaluation episodes are whole games: MinAtar Breakout pays 1 per brick, so returns are >= 0
    assert (often.evaluations["return"] >= 0).all()


def test_an_evaluation_plays_whole_episodes_with_its_own_generator():
    agent = Agent("breakout", replace(TINY, evaluation_episodes=3, evaluation_epsilon=1.0), 5)
    generator, game = agent.rng.bit_generator.state, pickle.dumps(agent.env.unwrapped.game)
    first = agent.evaluate()
    assert agent.evaluate() == first  # seeded by the run's seed and the frame alone
    assert agent.rng.bit_generator.state == generator and pickle.dumps(agent.env.unwrapped.game) == game


def test_random_play_matches_an_evaluation_at_full_exploration():
    """An evaluation with epsilon = 1 and random_play both play uniform actions in the same
    loop; random play is seeded by its own seed alone."""
    returns = random_play("breakout", 20, seed=3)
    assert returns == random_play("breakout", 20, seed=3) and len(returns) == 20
    assert all(r >= 0 for r in returns) and np.mean(returns) < 3  # random breakout scores little
    explore = Agent("breakout", replace(TINY, evaluation_episodes=20, evaluation_epsilon=1.0), 3)
    assert np.mean(returns) == pytest.approx(explore.evaluate(), abs=1.0)


def test_the_targets_follow_their_rules():
    gaps = {target: train("breakout", replace(TINY, target=target), 2).gaps for target in TARGETS}
    # the hard copy has just been made when the gap is measured (frames 200, 400, 600)
    assert (gaps["copy"]["parameter_distance"] == 0).all()
    assert (gaps["polyak"]["function_gap"] > 0).all()
    # Replicate moves the target towards the online network's values, not its parameters
    assert (gaps["lookahead-replicate"]["parameter_distance"] > 0).all()


def test_replicate_steps_shrink_the_function_gap():
    config = replace(TINY, target="lookahead-replicate", k_replicate=50, replicate_learning_rate=1e-3)
    agent = Agent("breakout", config, 0)
    for _ in range(250):  # the last Replicate phase ended at frame 200; the online network moved on
        agent.step()
    states = torch.as_tensor(agent.replay.states[:64])
    before = function_gap(agent.online, agent.target, states)
    agent.replicate()
    assert function_gap(agent.online, agent.target, states) < 0.5 * before


@pytest.mark.parametrize(
    "keyword, value, message",
    [
        ("target", "double", "target must be one of"),
        ("k_replicate", 0, "k_replicate must be an integer >= 1"),
        ("learning_rate", 0.0, "learning_rate must be"),
        ("replicate_learning_rate", -1.0, "replicate_learning_rate must be"),
        ("target_period", 0, "target_period must be an integer >= 1"),
        ("tau", 0.0, "tau must be"),
    ],
)
def test_bad_dqn_settings_are_named(keyword, value, message):
    with pytest.raises(ValueError, match=message):
        DQNConfig(**{keyword: value})


@pytest.mark.portability  # compares a run in worker processes with one in this process
def test_runs_in_worker_processes_equal_runs_in_this_one(tmp_path):
    config = replace(TINY, frames=300, log_every=100, evaluate_every=150)
    # one worker takes the runs in turn: a run must not depend on the runs before it
    runs = [("breakout", replace(config, target="lookahead-replicate"), 4), ("freeway", config, 1)]
    runs += [("breakout", config, seed) for seed in (0, 1)]
    trained = train_runs(runs, workers=1, checkpoint_folder=tmp_path)
    assert [(run.game, run.seed) for run in trained] == [
        ("breakout", 4),
        ("freeway", 1),
        ("breakout", 0),
        ("breakout", 1),
    ]
    for seed, run in zip([0, 1], trained[2:], strict=True):
        here = train("breakout", config, seed)
        assert run.episodes.equals(here.episodes) and run.gaps.equals(here.gaps)
        assert run.evaluations.equals(here.evaluations)
    assert len(list(tmp_path.glob("breakout-copy-seed*.pt"))) == 2
    with pytest.raises(ValueError, match="runs must be distinct"):
        train_runs(runs + runs[:1])


def test_the_iqm_and_its_interval():
    scores = np.array([0.0, 1.0, 2.0, 3.0, 100.0, 4.0, 5.0, 6.0])
    assert iqm(scores) == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))
    low, high = iqm_interval(scores, resamples=500, seed=0)
    assert low <= iqm(scores) <= high
    assert iqm_interval(scores, resamples=500, seed=0) == (low, high)
    with pytest.raises(ValueError, match="one score per seed"):
        iqm_interval([1.0])


def test_the_interval_of_an_iqm_difference():
    scores = np.array([5.0, 6.0, 7.0, 8.0, 9.0])
    low, high = iqm_difference_interval(scores, scores - 3.0, resamples=500, seed=1)
    assert low <= 3.0 <= high  # the shift is the difference of the IQMs
    # seeds resampled independently: shifting one set shifts the interval by as much
    shifted = iqm_difference_interval(scores + 2.0, scores - 3.0, resamples=500, seed=1)
    assert shifted == pytest.approx((low + 2.0, high + 2.0))
    low, high = iqm_difference_interval(scores, scores, resamples=500, seed=1)
    assert low < 0 < high
    with pytest.raises(ValueError, match="baseline must hold one score per seed"):
        iqm_difference_interval(scores, [1.0])
