"""TAIL's library on Meta-World: experts and seeding, cached demonstrations, the policy and its
adapters (counts by hand, identity at start), adapter isolation over a suite sequence, FWT and BWT."""

import copy
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from reprobook.book.profiles import load_profiles
from reprobook.imitation import demos as demos_module
from reprobook.imitation.adapters import adapter_state, add_adapter, count_by_location
from reprobook.imitation.continual import (
    ContinualConfig,
    Suite,
    pretrain,
    run_method,
    suite_parameters,
    validation_curve,
)
from reprobook.imitation.demos import collect, load, load_suite
from reprobook.imitation.evaluate import (
    EVALUATION_SEED_BASE,
    SELECTION_SEED_BASE,
    clip_counts,
    episode_outcomes,
    parameter_count,
    success_rates,
    transfer,
    transfer_many,
)
from reprobook.imitation.experiment import (
    compare_methods,
    make_suites,
    resampled_matrices,
    transfer_interval,
    transfer_table,
    validation_rise,
)
from reprobook.imitation.policy import BCPolicy, PolicyConfig
from reprobook.imitation.tasks import check_tasks, expert, make_env, reset, run_episode, task_names
from reprobook.imitation.training import TrainingConfig, train
from reprobook.imitation.windows import episode_windows, suite_windows

SMALL = PolicyConfig(window=3, width=16, layers=2, heads=2, inner=32, task_dim=8)


# --- tasks, experts and demonstrations -----------------------------------------------------------


@pytest.mark.parametrize("task", ["reach-v3", "drawer-close-v3", "button-press-topdown-v3"])
def test_experts_succeed_on_the_generation_seeds(task):
    demonstrations = collect(task, 3, max_steps=500)
    assert demonstrations.failures == 0
    assert demonstrations.seeds == [0, 1, 2]


def test_a_failed_expert_episode_is_skipped_and_counted():
    demonstrations = collect("peg-insert-side-v3", 3, max_steps=500)  # its expert misses seed 0's peg
    assert demonstrations.failures == 1
    assert demonstrations.seeds == [1, 2, 3]


def test_initial_states_follow_the_seed_on_any_instance():
    first, second = make_env("push-v3"), make_env("push-v3")
    assert np.array_equal(reset(first, 5), reset(second, 5))
    assert not np.array_equal(reset(first, 5), reset(first, 6))


def test_episodes_round_and_clip_the_actions():
    episode = run_episode(make_env("reach-v3"), lambda history: np.array([0.12345, -2.0, 0.9996, 0.0]), 0, 3)
    assert episode.actions.tolist() == [[0.123, -1.0, 1.0, 0.0]] * 3
    assert len(episode.observations) == 3 and not episode.success


def test_demonstrations_are_cached_rebuilt_when_damaged(tmp_path, monkeypatch):
    calls = []
    real_collect = demos_module.collect

    def counting_collect(*args, **kwargs):
        calls.append(args)
        return real_collect(*args, **kwargs)

    monkeypatch.setattr(demos_module, "collect", counting_collect)
    built = load("reach-v3", 2, max_steps=200, cache=tmp_path)  # a miss builds
    again = load("reach-v3", 2, max_steps=200, cache=tmp_path)  # a hit reads
    assert len(calls) == 1
    for (obs_a, act_a), (obs_b, act_b) in zip(built.episodes, again.episodes, strict=True):
        assert np.array_equal(obs_a, obs_b) and np.array_equal(act_a, act_b)
    entry = demos_module.cache_entry("reach-v3", 2, 0, 200, tmp_path)
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])  # a truncated archive
    load("reach-v3", 2, max_steps=200, cache=tmp_path)
    assert len(calls) == 2
    arrays = dict(np.load(entry))
    arrays["actions"] = arrays["actions"] + 1.0  # readable, but not what was stored
    np.savez(entry, **arrays)
    rebuilt = load("reach-v3", 2, max_steps=200, cache=tmp_path)
    assert len(calls) == 3
    assert np.array_equal(rebuilt.episodes[0][1], built.episodes[0][1])


def test_the_chapters_task_choices_are_metaworlds_tasks(root):
    spec = load_profiles(root / "chapters" / "tail" / "profiles.yml")["02_continual"].parameters
    assert list(spec["pretraining_tasks"].choices) == list(task_names())
    assert list(spec["adaptation_tasks"].choices) == list(task_names())


def test_windows_pad_the_first_steps_with_the_first_state():
    observations = np.arange(4)[:, None] * np.ones((4, 39))
    actions = np.arange(4)[:, None] * np.ones((4, 4))
    states, taken = episode_windows(observations, actions, 3)
    assert states[:, :, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert taken[:, -1, 0].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "tasks, message",
    [(["reach-v3", "no-such-task"], "unknown Meta-World tasks"), ([], "empty"), (["reach-v3", "reach-v3"], "twice")],
)
def test_bad_task_lists_are_named(tasks, message):
    with pytest.raises(ValueError, match=message):
        check_tasks(tasks, "suites")


# --- the policy and its adapters -----------------------------------------------------------------


def small_policy(tasks=("reach-v3",)):
    torch.manual_seed(0)
    return BCPolicy(SMALL, list(tasks)).double()


def test_the_loss_is_the_gaussian_negative_log_likelihood():
    policy = small_policy()
    states, actions = torch.randn(5, 3, 39, dtype=torch.float64), torch.randn(5, 3, 4, dtype=torch.float64)
    index = policy.head.index(["reach-v3"] * 5)
    mean, log_std = policy(states, index)
    expected = -torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).mean()
    assert torch.allclose(policy.loss(states, actions, index), expected, rtol=1e-12)


@pytest.mark.parametrize("style", ["lora", "bottleneck"])
def test_a_new_adapter_starts_as_the_identity(style):
    policy = small_policy()
    states = torch.randn(2, 3, 39, dtype=torch.float64)
    index = policy.head.index(["reach-v3"] * 2)
    before = policy(states, index)[0]
    add_adapter(policy, style, rank=2, bottleneck=4)
    assert torch.equal(policy(states, index)[0], before)


@pytest.mark.parametrize("style", ["lora", "prefix", "bottleneck"])
def test_a_window_reads_the_pretrained_positions_behind_any_adapter(style):
    policy = small_policy()
    add_adapter(policy, style, rank=2, bottleneck=4, prefix_tokens=3)
    read = []
    wpe = policy.decoder.get_base_model().wpe if style == "prefix" else policy.decoder.wpe
    wpe.register_forward_hook(lambda module, inputs, output: read.append(inputs[0]))
    policy(torch.randn(2, 3, 39, dtype=torch.float64), policy.head.index(["reach-v3"] * 2))
    assert read[0].tolist() == [[0, 1, 2]]


def test_adapter_parameter_counts_by_hand():
    d, layers, r, b, m, p = SMALL.width, SMALL.layers, 2, 4, 3, 5
    counts = {}
    for style in ("lora", "bottleneck", "prefix"):
        policy = small_policy()
        add_adapter(policy, style, rank=r, bottleneck=b, prefix_tokens=m, prefix_projection=p)
        counts[style] = sum(value.numel() for value in adapter_state(policy).values())
    assert counts["lora"] == layers * r * (d + 3 * d)  # fused q/k/v: d -> 3d
    assert counts["bottleneck"] == 2 * layers * (d * b + b + b * d + d)
    assert counts["prefix"] == m * d + (d * p + p) + (p * 2 * layers * d + 2 * layers * d)


@pytest.mark.parametrize("style", ["lora", "prefix", "bottleneck"])
def test_counts_by_location_add_up(style):
    policy = small_policy()
    add_adapter(policy, style, rank=2, bottleneck=4, prefix_tokens=3)
    trained = suite_parameters(policy, f"tail-{style}")
    counts = count_by_location(policy, trained)
    assert sum(counts.values()) == sum(p.numel() for p in trained)
    assert counts["task head: embeddings, FiLM, action"] == parameter_count(policy.head)
    adapter = sum(value.numel() for value in adapter_state(policy).values())
    assert sum(n for where, n in counts.items() if where.endswith(f"({style})") or "LoRA" in where) == adapter


def test_the_papers_clip_counts():
    assert clip_counts() == {"total": 149_620_737, "vision": 85_799_424, "text": 63_165_952, "lora": 491_520}


@pytest.mark.parametrize("keyword, value", [("rank", 0), ("bottleneck", -1), ("prefix_tokens", 0)])
def test_adapter_sizes_must_be_positive(keyword, value):
    style = {"rank": "lora", "bottleneck": "bottleneck", "prefix_tokens": "prefix"}[keyword]
    with pytest.raises(ValueError, match=keyword):
        add_adapter(small_policy(), style, **{keyword: value})


# --- the suite sequence ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")

    def suite(name, tasks):
        train, validation = suite_windows(load_suite(tasks, 2, max_steps=120, cache=cache), 3, 0.5, torch.float64)
        return Suite(name, tasks, train, validation)

    pretraining = suite("pretraining", ["reach-v3"])
    adaptation = [suite("first", ["drawer-close-v3"]), suite("second", ["button-press-topdown-v3"])]
    training = TrainingConfig(steps=4, batch=8, log_every=2)
    pretrained = pretrain(SMALL, pretraining, training, 0, episodes=1, max_steps=5)
    config = ContinualConfig(
        training=training,
        episodes=1,
        max_steps=5,
        rank=2,
        prefix_tokens=3,
        bottleneck=4,
        fisher_batches=2,
        replay_windows=10,
    )
    return pretrained, adaptation, config


@pytest.mark.parametrize("method", ["tail-lora", "tail-prefix", "tail-bottleneck", "fpf"])
def test_the_backbone_and_earlier_adapters_stay_bit_identical(sequence, method, tmp_path):
    pretrained, suites, config = sequence
    result = run_method(method, pretrained, suites, config, 0, tmp_path)
    assert result.digests["backbone_after"] == result.digests["backbone_before"]
    assert result.digests["suite_parts_at_end"] == result.digests["suite_parts_when_saved"]
    assert len(set(result.digests["suite_parts_when_saved"])) == len(suites)  # each suite trained its own part
    assert result.trainable < parameter_count(pretrained.policy)


@pytest.mark.parametrize("method", ["fft", "er", "ewc"])
def test_shared_methods_change_the_backbone(sequence, method, tmp_path):
    pretrained, suites, config = sequence
    result = run_method(method, pretrained, suites, config, 0, tmp_path)
    assert result.digests["backbone_after"] != result.digests["backbone_before"]
    assert result.matrix().shape == (2, 2)
    assert result.history["suite"].tolist() == [0] * 4 + [1] * 4


class ExpertOnSomeTasks:
    """A stand-in policy: Meta-World's expert on the ``solved`` tasks, standing still on the others."""

    def __init__(self, solved):
        self.experts = {task: expert(task) for task in solved}

    def eval(self):
        return self

    def act(self, history, task):
        return self.experts[task].get_action(history[-1]) if task in self.experts else np.zeros(4)


@pytest.mark.portability  # compares a run in worker processes with one in this process
@pytest.mark.filterwarnings("ignore:Constant:UserWarning")  # the experts' own notice
def test_tasks_evaluated_in_worker_processes_give_the_serial_rates(sequence):
    tasks = ["reach-v3", "drawer-close-v3", "button-press-topdown-v3"]
    stand_in = ExpertOnSomeTasks(["reach-v3", "button-press-topdown-v3"])
    serial = success_rates(stand_in, tasks, 2, 150)
    assert serial == {"reach-v3": 1.0, "drawer-close-v3": 0.0, "button-press-topdown-v3": 1.0}
    assert success_rates(stand_in, tasks, 2, 150, workers=2) == serial
    # a policy with peft modules and the bottleneck adapter's hooks reaches the workers as it is
    pretrained, suites, _ = sequence
    policy = copy.deepcopy(pretrained.policy)
    policy.head = policy.head.extended(suites[0].tasks, torch.Generator().manual_seed(0))
    add_adapter(policy, "bottleneck", bottleneck=4)
    both = ["reach-v3", *suites[0].tasks]
    assert success_rates(policy, both, 1, 5, workers=2) == success_rates(policy, both, 1, 5)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        success_rates(policy, both, 1, 5, workers=0)


@pytest.mark.parametrize("method", ["ewc", "tail-lora"])
def test_a_run_repeats_exactly_whatever_ran_before(sequence, method, tmp_path):
    pretrained, suites, config = sequence
    torch.manual_seed(1)
    first = run_method(method, pretrained, suites, config, 3, tmp_path / "a")
    torch.rand(5)  # another method, or anything else, may have drawn from the global generator
    second = run_method(method, pretrained, suites, config, 3, tmp_path / "b")
    assert first.history.equals(second.history)
    assert first.digests == second.digests


def test_unknown_methods_and_empty_sequences_are_named(sequence, tmp_path):
    pretrained, suites, config = sequence
    with pytest.raises(ValueError, match="method must be one of"):
        run_method("packnet", pretrained, suites, config, 0, tmp_path)
    with pytest.raises(ValueError, match="suites must hold"):
        run_method("fft", pretrained, [], config, 0, tmp_path)


def test_the_comparison_table_reads_each_matrix(sequence):
    pretrained, suites, config = sequence
    results = compare_methods(["fft", "tail-lora"], pretrained, suites, config, 0)
    table = transfer_table(results)
    for method, result in results.items():
        assert (table.loc[method, "FWT"], table.loc[method, "BWT"]) == pytest.approx(
            transfer(result.matrix()), nan_ok=True
        )
        assert table.loc[method, "share"] == result.trainable / result.total
    assert table.loc["fft", "share"] == 1.0


def test_suites_must_hold_distinct_known_tasks():
    with pytest.raises(ValueError, match="adaptation must list"):
        make_suites(["reach-v3"], [], 2, 3)
    with pytest.raises(ValueError, match="the suites together names a task twice"):
        make_suites(["reach-v3"], [["push-v3"], ["reach-v3"]], 2, 3)
    with pytest.raises(ValueError, match="adaptation suite 1 names unknown"):
        make_suites(["reach-v3"], [["fly-v3"]], 2, 3)


# --- forward and backward transfer ---------------------------------------------------------------


def test_transfer_on_a_hand_made_matrix():
    nan = math.nan
    matrix = [[0.8, nan, nan], [0.5, 0.6, nan], [0.2, 0.6, 1.0]]
    forward, backward = transfer(matrix)
    assert forward == pytest.approx((0.8 + 0.6 + 1.0) / 3)
    # suite 1: ((0.5 - 0.8) + (0.2 - 0.8)) / 2 = -0.45; suite 2: 0.6 - 0.6 = 0
    assert backward == pytest.approx((-0.45 + 0.0) / 2)
    assert transfer([[0.4]])[0] == 0.4 and math.isnan(transfer([[0.4]])[1])


@pytest.mark.parametrize("matrix", [[[0.5, 0.1]], [[nan := math.nan, nan], [0.1, 0.2]], []])
def test_transfer_rejects_malformed_matrices(matrix):
    with pytest.raises(ValueError, match="matrix must"):
        transfer(matrix)


def test_transfer_of_a_stack_equals_transfer_of_each_matrix():
    rng = np.random.default_rng(0)
    stack = np.tril(rng.uniform(size=(5, 3, 3)))
    forward, backward = transfer_many(stack)
    for matrix, f, b in zip(stack, forward, backward, strict=True):
        assert (f, b) == pytest.approx(transfer(matrix))


# --- evaluation seeds, intervals, the overfitting probe --------------------------------------------


class Replayed:
    """A stand-in result: fixed outcomes per cell of a two-suite sequence."""

    def __init__(self, cells):
        self.suites = [None, None]
        self.success = pd.DataFrame(
            [
                {"after": t, "suite": k, "task": "x", "success": np.mean(o), "outcomes": np.array(o, dtype=bool)}
                for (t, k), o in cells.items()
            ]
        )

    def matrix(self):
        means = self.success.groupby(["after", "suite"])["success"].mean()
        return np.array([[means.get((t, k), np.nan) for k in range(2)] for t in range(2)])


def test_resampling_the_episodes_recomputes_every_cell():
    result = Replayed({(0, 0): [1, 1, 0, 0], (1, 1): [1, 0, 0, 0], (1, 0): [0, 0, 0, 1]})
    identity = np.arange(4)[None]
    assert resampled_matrices(result, identity)[0] == pytest.approx(result.matrix(), nan_ok=True)
    first_twice = np.array([[0, 0, 0, 0]])  # episode 0 four times
    assert resampled_matrices(result, first_twice)[0][np.tril_indices(2)] == pytest.approx([1.0, 0.0, 1.0])


def test_transfer_intervals_cover_the_estimate_and_collapse_on_a_tie():
    forgetful = Replayed({(0, 0): [1] * 8, (1, 1): [1, 0] * 4, (1, 0): [0, 0, 0, 1] * 2})
    low, high = transfer_interval({"a": forgetful}, lambda fwt, bwt: bwt["a"])
    assert low <= transfer(forgetful.matrix())[1] <= high < 0
    same = Replayed({(0, 0): [1, 0] * 4, (1, 1): [0, 1] * 4, (1, 0): [1, 1] * 4})
    tie = transfer_interval({"a": same, "b": same}, lambda fwt, bwt: fwt["a"] - fwt["b"])
    assert tie == (0.0, 0.0)
    single = Replayed({(0, 0): [1], (1, 1): [0], (1, 0): [1]})
    assert all(math.isnan(end) for end in transfer_interval({"a": single}, lambda fwt, bwt: bwt["a"]))
    unequal = Replayed({(0, 0): [1, 0], (1, 1): [0, 1], (1, 0): [1, 1]})
    with pytest.raises(ValueError, match="same number of evaluation episodes"):
        transfer_interval({"a": same, "b": unequal}, lambda fwt, bwt: fwt["a"])


def test_reported_and_selection_episodes_use_their_own_seeds(sequence):
    pretrained, _, _ = sequence
    assert SELECTION_SEED_BASE - EVALUATION_SEED_BASE >= 1000  # far more than any profile's episodes
    solved = episode_outcomes(pretrained.policy, "reach-v3", 3, 5)
    assert solved.dtype == bool and solved.shape == (3,)
    with pytest.raises(ValueError, match="first_seed must be at least"):
        episode_outcomes(pretrained.policy, "reach-v3", 1, 5, first_seed=3)


def test_checkpoints_are_chosen_on_selection_seeds_and_reported_on_others(sequence, tmp_path, monkeypatch):
    pretrained, suites, config = sequence
    from reprobook.imitation import continual

    seen = []
    original = continual.task_outcomes

    def recording(policy, tasks, episodes, max_steps, workers=1, first_seed=EVALUATION_SEED_BASE):
        seen.append((episodes, first_seed))
        return original(policy, tasks, episodes, max_steps, workers, first_seed)

    monkeypatch.setattr(continual, "task_outcomes", recording)
    monkeypatch.setattr(
        continual,
        "success_rates",
        lambda p, t, e, m, w=1, first_seed=EVALUATION_SEED_BASE: {
            task: float(np.mean(o)) for task, o in recording(p, t, e, m, w, first_seed).items()
        },
    )
    chosen = replace(config, checkpoints=2, episodes=2, selection_episodes=1)
    result = run_method("fft", pretrained, suites, chosen, 0, tmp_path)
    assert seen.count((1, SELECTION_SEED_BASE)) == 4  # 2 checkpoints x 2 suites
    assert seen.count((2, EVALUATION_SEED_BASE)) == 3  # c_00, c_11 and c_10
    assert all(len(o) == 2 for o in result.success["outcomes"])
    seen.clear()
    run_method("fft", pretrained, suites, replace(config, episodes=2), 0, tmp_path / "one")
    assert seen == [(2, EVALUATION_SEED_BASE)] * 3  # one checkpoint: nothing to choose


def test_a_constant_schedule_keeps_the_rate_and_the_names_are_checked(sequence):
    pretrained, suites, _ = sequence
    policy = copy.deepcopy(pretrained.policy)
    policy.head = policy.head.extended(suites[0].tasks, torch.Generator().manual_seed(0))
    rates = []
    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    for schedule, expected in (("constant", [1e-3] * 3), ("linear", [1e-3, 1e-3 * 2 / 3, 1e-3 / 3])):
        rates.clear()
        config = TrainingConfig(steps=3, batch=4, learning_rate=1e-3, log_every=3, schedule=schedule)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch.optim.AdamW, "step", step)
            train(
                policy,
                list(policy.parameters()),
                suites[0].train,
                suites[0].validation,
                config,
                np.random.default_rng(0),
            )
        assert rates == pytest.approx(expected)
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainingConfig(schedule="cosine")


def test_the_validation_rise_by_hand():
    history = pd.DataFrame(
        {
            "suite": [0] * 5 + [1] * 4,
            "validation_loss": [3.0, 1.0, np.nan, 2.0, 4.0, 2.0, 1.5, 1.0, 1.0],
        }
    )
    # running means of 3: suite 0 (3, 2, 2, 7/3) rose by 1/3; suite 1 (2, 1.75, 1.5, 7/6) still falls
    assert validation_rise(history) == pytest.approx((1 / 3 + 0.0) / 2)
    assert validation_rise(history.drop(columns="suite").iloc[5:], last=1) == 0.0


@pytest.mark.parametrize("method", ["fft", "tail-lora"])
def test_the_probe_trains_a_copy_of_the_first_suite_alone(sequence, method):
    pretrained, suites, config = sequence
    before = copy.deepcopy(pretrained.policy.state_dict())
    probe = TrainingConfig(steps=4, batch=8, log_every=2, schedule="constant")
    history = validation_curve(method, pretrained, suites[0], probe, config, 0)
    assert history["step"].tolist() == [1, 2, 3, 4]
    assert history["validation_loss"].notna().sum() == 2
    assert all(torch.equal(before[k], v) for k, v in pretrained.policy.state_dict().items())
    with pytest.raises(ValueError, match="method must be one of"):
        validation_curve("packnet", pretrained, suites[0], probe, config, 0)
