"""Language-model runs with every optimizer through the book's one training loop."""

import pandas as pd
import pytest
import torch

from reprobook.lm.models import TrainingRecipe, build_model, get_spec
from reprobook.lm.train import pretrain
from reprobook.optim.lm_runs import (
    RunConfig,
    RunResult,
    final_state_config,
    gains_over,
    language_model_task,
    results_frame,
    train_run,
    train_runs,
    tuned_learning_rates,
    unigram_loss,
)

RECIPE = TrainingRecipe(steps=4, batch_size=2, learning_rate=3e-3, warmup_steps=1, eval_every=2, eval_batches=1)


@pytest.fixture(scope="module")
def task():
    return language_model_task("lab-micro", RECIPE)


def test_every_optimizer_trains_through_the_one_loop(task):
    results = train_runs(task, [RunConfig(name) for name in ("adam", "lion", "mada")])
    for result in results:
        assert result.history["step"] == [1, 2, 3, 4]
        assert result.history["eval_step"] == [2, 4]
    assert [len(r.coefficient_trace) for r in results] == [0, 0, 4]
    assert results[0].final_validation_loss != results[1].final_validation_loss


def test_parallel_runs_equal_sequential_runs(task):
    configs = [RunConfig("adam", seed=1), RunConfig("mada", seed=2, mada={"hyper_lr": {"rho": 0.1}})]
    sequential = train_runs(task, configs)
    parallel = train_runs(task, configs, workers=2)
    for a, b in zip(sequential, parallel):
        assert a.history == b.history
        assert a.coefficient_trace == b.coefficient_trace
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        train_runs(task, configs, workers=0)


def test_final_state_freezes_the_learned_coefficients(task):
    mada = train_run(task, RunConfig("mada", mada={"hyper_lr": {"rho": 0.5, "c": 0.5}, "rho": 0.5, "c": 0.5}))
    frozen = final_state_config(mada)
    final = mada.coefficient_trace[-1]
    assert frozen.betas == (final["beta1"], final["beta2"])
    assert frozen.mada == {**{k: final[k] for k in ("beta3", "rho", "c", "gamma")}, "hyper_lr": {}}
    rerun = train_run(task, frozen)
    assert all(row == final for row in rerun.coefficient_trace)
    with pytest.raises(ValueError, match="not a MADA run"):
        final_state_config(train_run(task, RunConfig("adam")))
    official = RunConfig("mada", mada={"zeroed_previous_grad": True, "hyper_start": 2}, learning_rate=1e-3)
    frozen = final_state_config(train_run(task, official))
    assert frozen.learning_rate == 1e-3 and frozen.mada["zeroed_previous_grad"] is True
    assert "hyper_start" not in frozen.mada and frozen.mada["hyper_lr"] == {}


def test_gains_are_paired_by_seed():
    frame = pd.DataFrame(
        {
            "optimizer": ["adam", "x", "adam", "x"],
            "seed": [0, 0, 1, 1],
            "validation loss": [2.0, 1.5, 3.0, 3.1],
        }
    )
    gains = gains_over(frame)
    assert gains.loc["x", "gain"] == pytest.approx(0.2)
    assert gains.loc["x", "gain std"] == pytest.approx(pd.Series([0.5, -0.1]).std())
    assert gains.loc["x", "seeds with a gain"] == 1
    assert list(gains.index) == ["adam", "x"]
    with pytest.raises(ValueError, match="baseline 'lion' is not among the runs"):
        gains_over(frame, baseline="lion")


def test_results_frame_has_one_row_per_run():
    history = {"eval_train_loss": [2.0], "eval_validation_loss": [2.5]}
    config = RunConfig("mada", seed=3, betas=(0.5, 0.9))
    frame = results_frame([RunResult(config, history, [], 1.0, test_loss=2.25, learning_rate=1e-3)])
    assert frame.to_dict("records") == [
        {
            "optimizer": "mada",
            "seed": 3,
            "beta1": 0.5,
            "beta2": 0.9,
            "learning rate": 1e-3,
            "train loss": 2.0,
            "validation loss": 2.5,
            "test loss": 2.25,
            "seconds": 1.0,
        }
    ]


@pytest.mark.parametrize(
    "architecture, message",
    [
        ({"depth": 2}, "unknown fields"),
        ({"layers": 0}, r"architecture\['layers'\] must be a positive integer"),
        ({"hidden_size": 64, "heads": 3}, "multiple of heads"),
    ],
)
def test_architecture_errors(architecture, message):
    with pytest.raises(ValueError, match=message):
        language_model_task("lab-micro", RECIPE, architecture)


def test_unknown_optimizer_is_named(task):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train_run(task, RunConfig("sgd"))


def test_the_default_optimizer_is_adamw_with_the_books_betas(task):
    """Passing no factory trains exactly as an explicit AdamW(0.9, 0.95): the pinned models are unchanged."""
    spec = get_spec("lab-micro")
    histories = []
    for factory in (None, lambda groups, lr: torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))):
        model = build_model(spec, task.vocab_size, task.end_of_text, seed=0)
        histories.append(
            pretrain(
                model,
                task.train_tokens,
                task.validation_tokens,
                RECIPE,
                spec.context,
                0,
                progress=False,
                optimizer=factory,
            )
        )
    assert histories[0] == histories[1]


def test_float64_runs_and_dtype_errors():
    task = language_model_task("lab-micro", RECIPE, dtype="float64")
    assert task.dtype == torch.float64
    result = train_run(task, RunConfig("mada", mada={"hyper_lr": {"rho": 0.1}}))
    assert len(result.coefficient_trace) == RECIPE.steps
    assert all(loss == loss for loss in result.history["train_loss"])
    with pytest.raises(ValueError, match="dtype must be 'float32', 'float64' or 'bfloat16'"):
        language_model_task("lab-micro", RECIPE, dtype="float16")


def test_causal_lm_loss_is_transformers_loss_without_the_float32_cast():
    from transformers.loss.loss_utils import ForCausalLMLoss

    from reprobook.optim.lm_runs import causal_lm_loss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 7, (2, 5), generator=generator)
    ours = causal_lm_loss(logits, labels, 7)
    assert ours.dtype == torch.float64
    assert ours.item() == pytest.approx(ForCausalLMLoss(logits, labels, 7).item(), rel=1e-6)
    assert causal_lm_loss(logits.float(), labels, 7).item() == ForCausalLMLoss(logits.float(), labels, 7).item()


def test_portable_initialization_draws_with_numpy():
    import numpy as np

    from reprobook.optim.lm_runs import initialize_portably

    model = build_model(get_spec("lab-micro"), 64, 0, seed=0).double()
    initialize_portably(model, seed=5)
    first = next(model.parameters())
    expected = np.random.default_rng(5).normal(0.0, model.config.initializer_range, size=tuple(first.shape))
    assert np.array_equal(first.detach().numpy(), expected)
    assert all(torch.equal(p, torch.ones_like(p)) for p in model.parameters() if p.ndim == 1)


def test_tuning_keeps_each_optimizers_best_rate_on_validation():
    frame = pd.DataFrame(
        {
            "optimizer": ["adam"] * 3 + ["lion"] * 3,
            "learning rate": [1e-3, 2e-3, 4e-3] * 2,
            "validation loss": [3.0, 2.5, 2.7, 2.0, 2.0, 2.9],
            "test loss": [1.0, 9.0, 9.0, 9.0, 9.0, 1.0],
        }
    )
    assert tuned_learning_rates(frame) == {"adam": 2e-3, "lion": 1e-3}  # a tie goes to the smaller
    with pytest.raises(ValueError, match="the same grid"):
        tuned_learning_rates(frame.iloc[:-1])
    broken = frame.assign(**{"validation loss": [3.0, float("nan"), 2.7, 2.0, 2.0, 2.9]})
    with pytest.raises(ValueError, match="finite"):
        tuned_learning_rates(broken)


def test_runs_train_at_their_own_rate_and_report_the_test_loss():
    task = language_model_task("lab-micro", RECIPE, test_batches=2)
    default, slow, again = (train_run(task, RunConfig("adam", learning_rate=rate)) for rate in (None, 1e-9, None))
    assert default.learning_rate == RECIPE.learning_rate and slow.learning_rate == 1e-9
    assert default.history != slow.history
    assert default.test_loss == again.test_loss  # fixed test batches
    assert 0 < default.test_loss < 10 and default.test_loss != slow.test_loss
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        train_run(task, RunConfig("adam", learning_rate=0.0))
    with pytest.raises(ValueError, match="test_batches"):
        language_model_task("lab-micro", RECIPE, test_batches=-1)


def test_unigram_loss_is_the_cross_entropy_of_the_training_frequencies(task):
    counts = torch.bincount(task.train_tokens, minlength=task.vocab_size).double() + 1
    probabilities = counts / counts.sum()
    expected = -torch.log(probabilities[task.validation_tokens]).mean().item()
    assert unigram_loss(task) == pytest.approx(expected, rel=1e-12)
    assert unigram_loss(task) < torch.log(torch.tensor(float(task.vocab_size))).item()
