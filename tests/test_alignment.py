"""The DPO family and C2-DPO: losses by hand and against TRL, the penalty's gradient, log-probabilities,
reference caching, preference data with a known reward, and a resumable trainer."""

import copy
import math

import numpy as np
import pytest
import torch

from reprobook.alignment import (
    PreferenceConfig,
    RewardModel,
    classification_loss,
    constraint_violation,
    known_reward,
    pack,
    preference_loss,
    preference_pairs,
    reference_logps,
    response_logps,
    sample_responses,
    target_counts,
    train_preferences,
)
from reprobook.alignment.trainer import pair_metrics
from reprobook.lm.models import build_model, get_spec


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


# --- the losses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chosen, rejected", [(0.3, -0.4), (-2.0, 1.5), (-30.0, -31.0)])
def test_each_loss_by_hand(chosen, rejected):
    beta, eps = 0.5, 0.1
    h = beta * (chosen - rejected)
    q = sigmoid(h)
    expected = {
        ("dpo", 0.0): -math.log(q),
        ("dpo", eps): -(1 - eps) * math.log(q) - eps * math.log(1 - q),
        ("robust", eps): (-(1 - eps) * math.log(q) + eps * math.log(1 - q)) / (1 - 2 * eps),
        ("exo", eps): q * math.log(q / (1 - eps)) + (1 - q) * math.log((1 - q) / eps),
        ("hinge", 0.0): max(0.0, 1 - h),
        ("ipo", 0.0): (chosen - rejected - 1 / (2 * beta)) ** 2,
    }
    for (name, smoothing), value in expected.items():
        got = classification_loss(
            torch.tensor([chosen], dtype=torch.float64),
            torch.tensor([rejected], dtype=torch.float64),
            beta,
            name,
            smoothing,
        )
        assert got.item() == pytest.approx(value, rel=1e-12, abs=1e-14), (name, smoothing)


def test_the_losses_see_only_the_margin():
    """Under-specification: adding the same amount to both log-ratios changes no loss; the constraint sees it."""
    generator = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(8, generator=generator, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    for name, smoothing in [("dpo", 0.0), ("dpo", 0.2), ("robust", 0.2), ("exo", 0.2), ("hinge", 0.0), ("ipo", 0.0)]:
        before = classification_loss(chosen, rejected, 0.3, name, smoothing)
        after = classification_loss(chosen - 7.0, rejected - 7.0, 0.3, name, smoothing)
        torch.testing.assert_close(before, after, rtol=1e-12, atol=1e-12)
    violation = constraint_violation(chosen, rejected, "log")
    torch.testing.assert_close(constraint_violation(chosen - 7.0, rejected - 7.0, "log"), violation - 14.0)


def test_hard_log_constraint_splits_the_margin():
    """On the constraint ρ_w + ρ_l = 0 the chosen log-ratio is half the margin, so it rises when the margin does."""
    margin = torch.linspace(-3, 5, 9, dtype=torch.float64)
    chosen, rejected = margin / 2, -margin / 2
    assert torch.all(constraint_violation(chosen, rejected, "log") == 0)
    torch.testing.assert_close(chosen, (chosen - rejected) / 2)
    torch.testing.assert_close(
        classification_loss(chosen, rejected, 0.1, "dpo"), -torch.nn.functional.logsigmoid(2 * 0.1 * chosen)
    )


def test_identity_constraint_is_the_pair_mass_change():
    reference = torch.tensor([-3.0, -5.0], dtype=torch.float64), torch.tensor([-4.0, -2.0], dtype=torch.float64)
    policy = torch.tensor([-2.5, -6.0], dtype=torch.float64), torch.tensor([-4.5, -2.2], dtype=torch.float64)
    violation = constraint_violation(
        policy[0] - reference[0], policy[1] - reference[1], "identity", reference[0], reference[1]
    )
    expected = (policy[0].exp() + policy[1].exp()) / (reference[0].exp() + reference[1].exp()) - 1
    torch.testing.assert_close(violation, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("constraint", ["log", "identity"])
def test_the_penalized_loss_gradient_matches_finite_differences(constraint):
    generator = torch.Generator().manual_seed(1)
    policy = torch.randn(2, 5, generator=generator, dtype=torch.float64).requires_grad_()
    reference = torch.randn(2, 5, generator=generator, dtype=torch.float64)

    def loss(values):
        return preference_loss(
            values[0], values[1], reference[0], reference[1], 0.2, "dpo", 0.1, constraint, penalty=0.7
        )[0]

    assert torch.autograd.gradcheck(loss, (policy,), eps=1e-6, atol=1e-8)
    (gradient,) = torch.autograd.grad(loss(policy), policy)
    unpenalized = torch.autograd.grad(
        preference_loss(policy[0], policy[1], reference[0], reference[1], 0.2, "dpo", 0.1)[0], policy
    )[0]
    assert (gradient - unpenalized).abs().max() > 1e-3, "the penalty must change the gradient"


def test_preference_loss_metrics():
    chosen, rejected = torch.tensor([-1.0, 2.0]), torch.tensor([0.5, -1.0])
    zeros = torch.zeros(2)
    _, metrics = preference_loss(chosen, rejected, zeros, zeros, constraint="log", penalty=0.1)
    torch.testing.assert_close(metrics["margin"], torch.tensor([-1.5, 3.0]))
    torch.testing.assert_close(metrics["accuracy"], torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(metrics["violation"], torch.tensor([-0.5, 1.0]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: classification_loss(t, t, 0.1, "kto"), "loss must be one of"),
        (lambda t: classification_loss(t, t, 0.0), "beta must be a number in"),
        (lambda t: classification_loss(t, t, 0.1, "dpo", 0.5), "label_smoothing must be a number in"),
        (lambda t: classification_loss(t, t, 0.1, "exo", 0.0), "label_smoothing must be a number in"),
        (lambda t: classification_loss(t, t, 0.1, "hinge", 0.1), "takes hard labels"),
        (lambda t: constraint_violation(t, t, "square"), "kind must be one of"),
        (lambda t: constraint_violation(t, t, "identity"), "needs reference_chosen_logps"),
        (lambda t: preference_loss(t, t, t, t, penalty=0.1), "name the constraint"),
        (lambda t: preference_loss(t, t, t, t, constraint="log", penalty=-1.0), "penalty must be"),
    ],
)
def test_loss_errors_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.zeros(2))


# --- log-probabilities ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    model = build_model(get_spec("lab-micro"), 20, 0, seed=3).double().eval()
    return model


def test_response_logps_match_a_direct_forward_pass_with_padding(tiny_model):
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    responses = [[10, 11], [12, 13, 14, 15], [16]]
    batch = pack(prompts, responses, pad_id=0)
    assert batch.input_ids.shape == (3, 6)
    assert batch.response_mask.sum().item() == 7
    batched = response_logps(tiny_model, batch)
    for row, (prompt, response) in enumerate(zip(prompts, responses)):
        tokens = torch.tensor([prompt + response])
        with torch.no_grad():
            logps = torch.log_softmax(tiny_model(input_ids=tokens).logits[0], dim=-1)
        expected = sum(logps[len(prompt) + i - 1, token].item() for i, token in enumerate(response))
        assert batched[row].item() == pytest.approx(expected, abs=1e-10)


def test_pack_errors():
    with pytest.raises(ValueError, match="equal length"):
        pack([[1]], [[2], [3]], 0)
    with pytest.raises(ValueError, match="empty prompt or response"):
        pack([[1]], [[]], 0)


# --- preference data with a known reward -------------------------------------------------------------


def test_known_rewards():
    counts = np.array([0, 2, 3, 4, 6])
    assert known_reward(counts, "monotone").tolist() == [0, 2, 3, 4, 6]
    assert known_reward(counts, "peaked", peak=3).tolist() == [0, 2, 3, 2, 0]
    assert target_counts([[1, 2, 1], [3, 3]], [1, 3]).tolist() == [2, 2]
    with pytest.raises(ValueError, match="positive peak"):
        known_reward(counts, "peaked")
    with pytest.raises(ValueError, match="kind must be one of"):
        RewardModel((1,), "linear")


def test_sampling_is_seeded_and_pairs_follow_the_reward(tiny_model):
    prompts = [[1, 2, 3]] * 200
    first = sample_responses(tiny_model, prompts, 4, seed=5)
    assert first == sample_responses(tiny_model, prompts, 4, seed=5)
    assert first != sample_responses(tiny_model, prompts, 4, seed=6)
    assert all(len(r) == 4 and all(0 <= t < tiny_model.config.vocab_size for t in r) for r in first)
    reward = RewardModel(tuple(range(10)), "monotone")
    pairs = preference_pairs(tiny_model, prompts, 4, reward, seed=0)
    np.testing.assert_array_equal(pairs.chosen_reward, reward(pairs.chosen))
    decided = pairs.chosen_reward != pairs.rejected_reward
    # Bradley-Terry labels: the better response wins most, but not all, of the decided pairs
    share = np.mean(pairs.chosen_reward[decided] > pairs.rejected_reward[decided])
    assert 0.6 < share < 1.0


# --- the trainer ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_problem(tiny_model):
    prompts = [[1 + i % 7, 2 + i % 5, 3] for i in range(24)]
    reward = RewardModel(tuple(range(10)), "peaked", peak=2)
    pairs = preference_pairs(tiny_model, prompts, 3, reward, seed=0)
    return pairs, reward, prompts[:6]


def test_reference_cache_gives_the_recomputed_values(tiny_model, small_problem, tmp_path):
    pairs = small_problem[0]
    fresh = reference_logps(tiny_model, pairs, pad_id=0, batch_size=5)
    stored = reference_logps(tiny_model, pairs, pad_id=0, cache=tmp_path)
    assert len(list((tmp_path / "alignment").glob("*.pt"))) == 1
    read_back = reference_logps(tiny_model, pairs, pad_id=0, cache=tmp_path)
    for a, b, c in zip(fresh, stored, read_back):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        assert torch.equal(b, c)
    config = PreferenceConfig(steps=3, batch_size=4, log_every=3)
    runs = [
        train_preferences(
            copy.deepcopy(tiny_model), tiny_model, pairs, config, 0, reference_cache=cache, progress=False
        )
        for cache in (None, tmp_path)
    ]
    assert runs[0]["loss"] == runs[1]["loss"]


def test_training_moves_the_margin_and_logs(tiny_model, small_problem):
    pairs, reward, eval_prompts = small_problem
    config = PreferenceConfig(steps=12, batch_size=8, learning_rate=3e-3, log_every=6)
    history = train_preferences(
        copy.deepcopy(tiny_model), tiny_model, pairs, config, 0, reward, eval_prompts, 3, progress=False
    )
    assert history["step"] == list(range(1, 13))
    assert history["eval_step"] == [0, 6, 12] and len(history["true_reward"]) == 3
    assert history["chosen_logratio"][0] == pytest.approx(0.0, abs=1e-12)  # the policy starts at the reference
    assert np.mean(history["margin"][-3:]) > np.mean(history["margin"][:3])


def test_watched_pairs_are_measured_whole_at_each_evaluation(tiny_model, small_problem):
    pairs, reward, eval_prompts = small_problem
    config = PreferenceConfig(steps=6, batch_size=8, learning_rate=3e-3, log_every=3)
    policy = copy.deepcopy(tiny_model)
    history = train_preferences(
        policy, tiny_model, pairs, config, 0, reward, eval_prompts, 3, watched={"all": pairs}, progress=False
    )
    assert history["eval_step"] == [0, 3, 6]
    assert history["all_chosen_logratio"][0] == 0.0 and history["all_violation"][0] == 0.0
    # the last measure, recomputed by hand from the trained policy over every pair
    reference = reference_logps(tiny_model, pairs, 0)
    chosen, rejected = (p - r for p, r in zip(reference_logps(policy, pairs, 0), reference))
    assert history["all_chosen_logratio"][-1] == pytest.approx(chosen.mean().item(), abs=1e-12)
    assert history["all_accuracy"][-1] == pytest.approx((chosen > rejected).double().mean().item())
    order = np.sign(pairs.chosen_reward - pairs.rejected_reward)
    decided = order != 0
    by_hand = np.mean(np.sign((chosen - rejected).numpy()[decided]) == order[decided])
    assert history["all_true_order_accuracy"][-1] == pytest.approx(by_hand)
    metrics = pair_metrics(policy, pairs, reference, 0)
    assert metrics["violation"] == pytest.approx((chosen + rejected).mean().item(), abs=1e-12)


def test_an_interrupted_run_resumes_exactly(tiny_model, small_problem, tmp_path):
    pairs, reward, eval_prompts = small_problem
    config = PreferenceConfig(steps=6, batch_size=4, log_every=3)
    whole_policy = copy.deepcopy(tiny_model)
    whole = train_preferences(whole_policy, tiny_model, pairs, config, 0, reward, eval_prompts, 3, progress=False)

    def failing_reward(responses):
        if len(calls) == 2:  # the evaluation of step 6, after the checkpoint of step 3
            raise KeyboardInterrupt
        calls.append(1)
        return reward(responses)

    calls = []
    with pytest.raises(KeyboardInterrupt):
        train_preferences(
            copy.deepcopy(tiny_model),
            tiny_model,
            pairs,
            config,
            0,
            failing_reward,
            eval_prompts,
            3,
            checkpoint_dir=tmp_path,
            progress=False,
        )
    resumed_policy = copy.deepcopy(tiny_model)
    resumed = train_preferences(
        resumed_policy, tiny_model, pairs, config, 0, reward, eval_prompts, 3, checkpoint_dir=tmp_path, progress=False
    )
    assert resumed == whole
    for a, b in zip(whole_policy.parameters(), resumed_policy.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another configuration"):
        train_preferences(
            copy.deepcopy(tiny_model), tiny_model, pairs, PreferenceConfig(steps=7), 0, checkpoint_dir=tmp_path
        )


def test_config_errors():
    with pytest.raises(ValueError, match="loss must be one of"):
        PreferenceConfig(loss="orpo")
    with pytest.raises(ValueError, match="constraint must be None or one of"):
        PreferenceConfig(constraint="sqrt")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        PreferenceConfig(steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        PreferenceConfig(learning_rate=float("nan"))


# --- agreement with TRL ------------------------------------------------------------------------------

EXAMPLES = {
    "prompt": ["To be, or ", "My lord, I ", "Good morrow"],
    "chosen": ["not to be", "am here", "!"],
    "rejected": ["to fail", "go now, sir", "to you all"],
}


def test_losses_equal_trl(tmp_path):
    pytest.importorskip("trl")
    from reprobook.alignment.trl_check import losses_against_trl
    from reprobook.lm.corpus import load_corpus
    from reprobook.lm.lab import load_tokenizer

    tokenizer = load_tokenizer(get_spec("lab-micro").tokenizer, load_corpus())
    reference = build_model(get_spec("lab-micro"), len(tokenizer), tokenizer.pad_token_id, seed=1).double()
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(2)
        for parameter in policy.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    rows = losses_against_trl(policy, reference, tokenizer, EXAMPLES, str(tmp_path))
    assert [row["loss"] for row in rows] == ["dpo", "hinge", "ipo", "robust", "exo"]
    for row in rows:
        assert row["book"] == pytest.approx(row["TRL"], rel=1e-5), row
    assert len({round(row["TRL"], 3) for row in rows}) == len(rows), (
        "the variants must differ, or the test proves little"
    )
    with pytest.raises(ValueError, match="TRL has no"):
        losses_against_trl(policy, reference, tokenizer, EXAMPLES, str(tmp_path), variants=(("kto", 0.0),))
    # TRL 1.16's sigmoid loss ignores label smoothing: at ε = 0.1 it is plain DPO, not cDPO
    plain, smoothed = losses_against_trl(
        policy, reference, tokenizer, EXAMPLES, str(tmp_path), variants=(("dpo", 0.0), ("dpo", 0.1))
    )
    assert smoothed["TRL"] == pytest.approx(plain["TRL"], rel=1e-12)
    assert smoothed["book"] != pytest.approx(smoothed["TRL"], rel=1e-3)
