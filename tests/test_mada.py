"""MADA, AVGrad and the counterexample: special points, hypergradients, boxes, resumes, errors."""

import copy
import math

import numpy as np
import pytest
import pytorch_optimizer
import torch

from reprobook.optim import counterexample
from reprobook.optim.adaptive import OPTIMIZERS, AVGrad, make_optimizer
from reprobook.optim.counterexample import gradient, run_amsgrad, run_mada
from reprobook.optim.mada import BOXES, COEFFICIENTS, MADA, hyper_adam, mada_direction

ADAM_POINT = {"beta3": 0.0, "rho": 1.0, "c": 1.0, "gamma": 1.0}
INTERIOR = {"beta1": 0.8, "beta2": 0.9, "beta3": 0.3, "rho": 0.5, "c": 0.6, "gamma": 0.7}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


def batch(step):
    generator = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 5, generator=generator, dtype=torch.float64)
    return x, (x.sum(dim=1, keepdim=True) ** 2 + 0.1 * torch.randn(16, 1, generator=generator, dtype=torch.float64))


def loss_at(model, step):
    x, y = batch(step)
    return ((model(x) - y) ** 2).mean()


def train(model, optimizer, steps, start=0):
    for step in range(start, start + steps):
        optimizer.zero_grad()
        loss_at(model, step).backward()
        optimizer.step()


def max_difference(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def groups(model, weight_decay=0.1):
    weights = [p for p in model.parameters() if p.ndim == 2]
    biases = [p for p in model.parameters() if p.ndim == 1]
    return [{"params": weights, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}]


# --- special points -------------------------------------------------------------------------


@pytest.mark.parametrize("initial_v, tolerance", [(0.0, 1e-12), (1e-15, 1e-6)])
def test_adam_point_is_adamw(initial_v, tolerance):
    a, b = tiny_model(), tiny_model()
    mada = MADA(groups(a), lr=1e-2, beta1=0.9, beta2=0.95, **ADAM_POINT, initial_v=initial_v)
    adam = torch.optim.AdamW(groups(b), lr=1e-2, betas=(0.9, 0.95), eps=1e-6)
    train(a, mada, 100)
    train(b, adam, 100)
    assert max_difference(a, b) <= tolerance


def test_rho_zero_is_avgrad():
    a, b = tiny_model(), tiny_model()
    mada = MADA(groups(a), lr=1e-2, beta1=0.9, beta2=0.95, beta3=0.0, rho=0.0, c=1.0, gamma=1.0, initial_v=0.0)
    train(a, mada, 100)
    train(b, AVGrad(groups(b), lr=1e-2, betas=(0.9, 0.95), eps=1e-6), 100)
    assert max_difference(a, b) <= 1e-12


def test_c_zero_gives_yogis_second_moment():
    a, b = tiny_model(), tiny_model()
    mada = MADA(a.parameters(), lr=1e-2, beta1=0.9, beta2=0.95, beta3=0.0, rho=1.0, c=0.0, gamma=1.0)
    yogi = pytorch_optimizer.Yogi(b.parameters(), lr=1e-2, betas=(0.9, 0.95), eps=1e-6, initial_accumulator=1e-15)
    train(a, mada, 100)
    train(b, yogi, 100)
    assert max_difference(a, b) <= 1e-10
    v_mada = mada.state[next(a.parameters())]["current"]["v"]  # the group's states, flattened
    v_yogi = torch.cat([yogi.state[q]["exp_avg_sq"].reshape(-1) for q in b.parameters()])
    assert (v_mada - v_yogi).abs().max().item() <= 1e-10 * v_yogi.abs().max().item()


def test_gamma_zero_is_lions_sign_step():
    a, b, c = tiny_model(), tiny_model(), tiny_model()
    textbook = dict(beta3=0.0, rho=1.0, c=1.0, gamma=0.0, weight_decay=0.1, lion_updated_momentum=False)
    train(a, MADA(a.parameters(), lr=1e-3, **textbook), 100)
    train(b, pytorch_optimizer.Lion(b.parameters(), lr=1e-3, betas=(0.95, 0.98), weight_decay=0.1), 100)
    assert max_difference(a, b) <= 1e-12
    # the official code's u uses the updated momentum: another optimizer
    train(c, MADA(c.parameters(), lr=1e-3, **{**textbook, "lion_updated_momentum": True}), 100)
    assert max_difference(b, c) > 1e-6


def test_adan_is_the_papers_algorithm():
    """``make_optimizer("adan")`` against Adan written from its paper (Xie et al., Algorithm 1, bias-corrected).

    In the package's convention the betas are the weights kept, (0.98, 0.92, 0.99) for the
    paper's (0.02, 0.08, 0.01); the gradient difference is 0 at the first step.
    """
    lr, eps, wd, (b1, b2, b3) = 1e-2, 1e-6, 0.1, (0.98, 0.92, 0.99)
    a, b = tiny_model(), tiny_model()
    adan = make_optimizer("adan", [{"params": list(a.parameters()), "weight_decay": wd}], lr, eps=eps)
    states = [dict(m=0, d=0, n=0, previous=None) for _ in b.parameters()]
    for step in range(30):
        adan.zero_grad()
        loss_at(a, step).backward()
        adan.step()
        b.zero_grad()
        loss_at(b, step).backward()
        k = step + 1
        with torch.no_grad():
            for p, state in zip(b.parameters(), states):
                g = p.grad.clone()
                difference = g - state["previous"] if state["previous"] is not None else torch.zeros_like(g)
                state["m"] = b1 * state["m"] + (1 - b1) * g
                state["d"] = b2 * state["d"] + (1 - b2) * difference
                state["n"] = b3 * state["n"] + (1 - b3) * (g + b2 * difference) ** 2
                state["previous"] = g
                direction = state["m"] / (1 - b1**k) + b2 * state["d"] / (1 - b2**k)
                p.mul_(1 - lr * wd).sub_(lr * direction / ((state["n"] / (1 - b3**k)).sqrt() + eps))
    assert max_difference(a, b) <= 1e-10


def test_hyper_adam_learns_only_the_betas():
    model = tiny_model()
    optimizer = hyper_adam(model.parameters(), lr=1e-2, hyper_lr={"beta1": 1e-2, "beta2": 1e-2})
    train(model, optimizer, 20)
    final = optimizer.current_coefficients()
    assert final["beta1"] != 0.9 and final["beta2"] != 0.95
    assert {k: final[k] for k in ADAM_POINT} == ADAM_POINT
    with pytest.raises(ValueError, match="only beta1 and beta2"):
        hyper_adam(model.parameters(), hyper_lr={"rho": 0.1})


# --- the hypergradient and the boxes --------------------------------------------------------


@pytest.mark.parametrize("zeroed", [False, True])
def test_hypergradient_matches_finite_differences_of_the_next_loss(zeroed):
    """∂L(θ_3(κ); batch 3)/∂κ from the optimizer against central differences of that loss.

    The hypergradient treats AVGrad's average v̄ as a constant (as the official code does), so
    it is the exact derivative where v̄ does not enter the update, at ρ = 1; with and without
    the official loop's zeroed previous gradient.
    """
    model = tiny_model()
    rates = dict.fromkeys(COEFFICIENTS, 1e-12)  # learn everything, move nothing
    kappa = {**INTERIOR, "rho": 1.0, "zeroed_previous_grad": zeroed}
    optimizer = MADA(groups(model), lr=1e-2, **kappa, hyper_lr=rates, hypergradient_clip=None)
    train(model, optimizer, 2)
    optimizer.zero_grad()
    loss_at(model, 2).backward()
    before = copy.deepcopy((model, optimizer))

    def next_loss(coefficient, shift):
        m, o = copy.deepcopy(before)
        o.zero_grad()
        loss_at(m, 2).backward()
        o.hyper_lr = dict.fromkeys(COEFFICIENTS, 0.0)
        o.learned = ()
        with torch.no_grad():
            o.coefficients[coefficient] += shift
        o.step()
        with torch.no_grad():
            return loss_at(m, 3).item()

    optimizer.step()
    optimizer.zero_grad()
    loss_at(model, 3).backward()
    optimizer.step()
    h = 1e-6
    for name in COEFFICIENTS:
        finite_difference = (next_loss(name, h) - next_loss(name, -h)) / (2 * h)
        computed = optimizer.last_hypergradient[name]
        assert computed == pytest.approx(finite_difference, rel=1e-5, abs=1e-9), name


def test_weights_without_gradient_keep_the_hypergradient_finite():
    """v̂ = 0 where a weight never had a gradient: the hypergradient must not become NaN there."""
    model = tiny_model()
    idle = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    rates = dict.fromkeys(COEFFICIENTS, 0.01)
    optimizer = MADA([*model.parameters(), idle], **INTERIOR, hyper_lr=rates, initial_v=0.0)
    for step in range(5):
        optimizer.zero_grad()
        loss_at(model, step).backward()
        idle.grad = torch.zeros_like(idle)
        optimizer.step()
    assert all(math.isfinite(value) for value in optimizer.current_coefficients().values())
    assert all(math.isfinite(value) for value in optimizer.last_hypergradient.values())
    assert torch.equal(idle.detach(), torch.ones(3, dtype=torch.float64))


def test_coefficients_stay_in_their_boxes():
    model = tiny_model()
    rates = dict.fromkeys(COEFFICIENTS, 5.0)
    optimizer = MADA(model.parameters(), lr=1e-2, **INTERIOR, hyper_lr=rates, hyper_momentum=dict.fromkeys(rates, 0.9))
    train(model, optimizer, 60)
    trace = optimizer.coefficient_trace
    assert len(trace) == 60
    for row in trace:
        for name, value in row.items():
            assert BOXES[name][0] <= value <= BOXES[name][1], (name, value)
    touched = {name for row in trace for name, value in row.items() if value in BOXES[name]}
    assert touched, "the rates are large enough that some coefficient reaches its box"


def test_hyper_start_delays_the_first_hyper_step():
    model = tiny_model()
    optimizer = MADA(model.parameters(), lr=1e-2, **INTERIOR, hyper_lr={"rho": 0.1}, hyper_start=5)
    train(model, optimizer, 8)
    rhos = [row["rho"] for row in optimizer.coefficient_trace]
    assert rhos[:5] == [0.5] * 5 and rhos[5] != 0.5


# --- resuming -------------------------------------------------------------------------------


# --- the official training loop's previous gradient ------------------------------------------


@pytest.mark.parametrize("zeroed", [False, True])
def test_look_ahead_gradient_by_hand(zeroed):
    """With the option ĝ = (1 + β3) g and n averages g; without it Adan's g + β3 (g − g_prev)."""
    g_prev = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    g = torch.tensor([1.5, 0.25, -0.5], dtype=torch.float64)
    previous = {
        "m": torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64),
        "v": torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64),
        "v_mean": torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64),
        "n": torch.tensor([-0.1, 0.2, 0.05], dtype=torch.float64),
        "grad": g_prev,
        "lion_m": torch.zeros(3, dtype=torch.float64),
    }
    b1, b2, b3, rho, t, eps = 0.8, 0.9, 0.3, 0.25, 3, 1e-6
    kappa = {"beta1": b1, "beta2": b2, "beta3": b3, "rho": rho, "c": 1.0, "gamma": 1.0}
    direction, states = mada_direction(g, previous, kappa, t, eps, zeroed_previous_grad=zeroed)
    for i in range(3):
        gi, pi = g[i].item(), g_prev[i].item()
        difference = gi if zeroed else gi - pi
        look_ahead = (1 + b3) * gi if zeroed else gi + b3 * (gi - pi)
        assert look_ahead == pytest.approx(gi + b3 * difference, rel=1e-15)
        m = b1 * previous["m"][i].item() + (1 - b1) * gi
        v = b2 * previous["v"][i].item() + (1 - b2) * look_ahead**2
        n = b3 * previous["n"][i].item() + (1 - b3) * difference
        v_mean = (v + (t - 1) * previous["v_mean"][i].item()) / t
        v_hat = (rho * v + (1 - rho) * v_mean) / (1 - b2**t)
        expected = (m / (1 - b1**t) + b3 * n) / (math.sqrt(v_hat) + eps)
        assert states["v"][i].item() == pytest.approx(v, rel=1e-14)
        assert states["n"][i].item() == pytest.approx(n, rel=1e-14)
        assert direction[i].item() == pytest.approx(expected, rel=1e-14)


def test_zeroed_previous_grad_is_the_official_loop():
    """The option equals the default MADA whose kept gradient is zeroed in place after every step.

    That is what the official training loop's zero_grad() did to the gradient the official
    optimizer kept (at a fixed κ; the hypergradient's test above covers the hyper-steps).
    """
    start = {**INTERIOR, "hyper_lr": {}}
    official, zeroing = tiny_model(), tiny_model()
    with_option = MADA(groups(official), lr=1e-2, zeroed_previous_grad=True, **start)
    by_hand = MADA(groups(zeroing), lr=1e-2, **start)
    for step in range(6):
        for model, optimizer in ((official, with_option), (zeroing, by_hand)):
            optimizer.zero_grad()
            loss_at(model, step).backward()
            optimizer.step()
        for state in by_hand.state.values():
            if "current" in state:
                state["current"]["grad"].zero_()
    assert max_difference(official, zeroing) == 0.0
    assert with_option.coefficient_trace == by_hand.coefficient_trace
    default = tiny_model()
    train(default, MADA(groups(default), lr=1e-2, **start), 6)
    assert max_difference(official, default) > 1e-6
    with pytest.raises(ValueError, match="zeroed_previous_grad must be True or False"):
        MADA(tiny_model().parameters(), zeroed_previous_grad=1)


def test_state_dict_round_trip_continues_identically():
    rates, momenta = dict.fromkeys(COEFFICIENTS, 0.05), dict.fromkeys(COEFFICIENTS, 0.5)
    model = tiny_model()
    optimizer = MADA(groups(model), lr=1e-2, **INTERIOR, hyper_lr=rates, hyper_momentum=momenta)
    train(model, optimizer, 10)
    saved_model, saved_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    train(model, optimizer, 10, start=10)

    resumed = tiny_model(seed=5)
    resumed.load_state_dict(saved_model)
    optimizer2 = MADA(groups(resumed), lr=1e-2, **INTERIOR, hyper_lr=rates, hyper_momentum=momenta)
    optimizer2.load_state_dict(saved_optimizer)
    train(resumed, optimizer2, 10, start=10)
    assert max_difference(model, resumed) == 0.0
    assert optimizer2.coefficient_trace == optimizer.coefficient_trace
    with pytest.raises(ValueError, match="not a MADA state"):
        optimizer2.load_state_dict(torch.optim.Adam(resumed.parameters()).state_dict())


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta1": 1.2}, "beta1 must lie in its box"),
        ({"beta2": 0.3}, r"beta2 must lie in its box \[0.501"),
        ({"rho": -0.1}, "rho must lie in its box"),
        ({"gamma": float("nan")}, "gamma must be a finite number"),
        ({"hyper_lr": {"rho": -1.0}}, r"hyper_lr\['rho'\] must be a finite number >= 0"),
        ({"hyper_lr": {"c": float("inf")}}, r"hyper_lr\['c'\] must be a finite number"),
        ({"hyper_lr": {"alpha": 0.1}}, "unknown coefficients"),
        ({"hyper_momentum": {"beta1": float("nan")}}, "hyper_momentum"),
        ({"lr": -1.0}, "lr must be a finite number >= 0"),
        ({"hyper_start": -1}, "hyper_start"),
        ({"hypergradient_clip": float("nan")}, "hypergradient_clip"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MADA(tiny_model().parameters(), **kwargs)


def test_parameters_without_gradients_are_refused():
    model = tiny_model()
    model[0].bias.requires_grad_(False)
    with pytest.raises(ValueError, match="does not require gradients"):
        MADA(model.parameters())
    model = tiny_model()
    optimizer = MADA(model.parameters())
    x, y = batch(0)
    ((model[0](x).sum() - 1) ** 2).backward()  # the last layer gets no gradient
    with pytest.raises(ValueError, match="has no gradient"):
        optimizer.step()


def test_make_optimizer_builds_every_optimizer_and_names_errors():
    for name in OPTIMIZERS:
        model = tiny_model()
        optimizer = make_optimizer(name, groups(model), 1e-3)
        before = copy.deepcopy(model)
        train(model, optimizer, 3)
        assert max_difference(model, before) > 0, name
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("sgd", groups(tiny_model()), 1e-3)
    with pytest.raises(ValueError, match="apply to MADA and HyperAdam only"):
        make_optimizer("adam", groups(tiny_model()), 1e-3, rho=0.5)


# --- the counterexample ---------------------------------------------------------------------


def torch_counterexample(optimizer_for, steps):
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_for([x])
    xs = []
    for t in range(1, steps + 1):
        x.grad = torch.full_like(x, gradient(t))
        optimizer.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)
        xs.append(x.item())
    return xs, optimizer


def test_scalar_mada_matches_the_torch_optimizer_step_by_step():
    kappa = {"beta1": 0.9, "beta2": 0.99, "beta3": 0.2, "rho": 0.8, "c": 0.9, "gamma": 0.9}
    rates = {"beta1": 1e-4, "beta2": 1e-4, "beta3": 0.1, "rho": 0.1, "c": 0.1, "gamma": 0.1}
    momenta = dict.fromkeys(COEFFICIENTS, 0.9)
    steps = 500
    scalar = run_mada(steps, 1e-3, kappa, rates, momenta, eps=1e-6, record_every=1)
    xs, optimizer = torch_counterexample(
        lambda p: MADA(
            p,
            lr=1e-3,
            **kappa,
            hyper_lr=rates,
            hyper_momentum=momenta,
            hypergradient_clip=None,
            initial_v=0.0,
            n_starts_at_grad_squared=False,
        ),
        steps,
    )
    assert max(abs(a - b) for a, b in zip(scalar.x, xs)) <= 1e-10
    assert -1 < min(xs) and max(xs) < 1, "the test needs the projection inactive"
    for name in COEFFICIENTS:
        torch_trace = [row[name] for row in optimizer.coefficient_trace]
        assert max(abs(a - b) for a, b in zip(scalar.coefficients[name], torch_trace)) <= 1e-9, name


def test_scalar_adam_and_amsgrad_match_torch():
    steps = 3000  # long enough to reach the boundary x = +1
    adam_point = {"beta1": 0.9, "beta2": 0.99, **ADAM_POINT}
    adam = run_mada(steps, 1e-2, adam_point, record_every=1)
    xs, _ = torch_counterexample(lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.99), eps=1e-8), steps)
    assert max(abs(a - b) for a, b in zip(adam.x, xs)) <= 1e-9
    amsgrad = run_amsgrad(steps, 1e-2, record_every=1)
    xs, _ = torch_counterexample(
        lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, amsgrad=True), steps
    )
    assert max(abs(a - b) for a, b in zip(amsgrad.x, xs)) <= 1e-9


@pytest.mark.parametrize("rho, beta3, gamma", [(1.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.3, 0.4, 0.7)])
def test_vectorized_fixed_points_equal_the_scalar_loop(rho, beta3, gamma):
    point = {"beta1": 0.9, "beta2": 0.99, "beta3": beta3, "rho": rho, "c": 1.0, "gamma": gamma}
    options = {"eps": 1e-6, "initial_v": 1e-15, "n_starts_at_grad_squared": True, "x0": -0.99, "record_every": 7}
    vectorized = run_mada(3000, 0.05, point, **options)
    loop = counterexample._scalar_run(3000, 0.05, list(point.values()), [0.0] * 6, [0.0] * 6, *options.values())
    assert np.array_equal(vectorized.steps, loop.steps)
    assert np.max(np.abs(vectorized.x - loop.x)) <= 1e-10
    assert np.max(np.abs(vectorized.average_regret - loop.average_regret)) <= 1e-10
    assert np.abs(vectorized.x).max() == 1.0, "the test needs the projection active"
    with pytest.raises(ValueError, match="c = 1"):
        counterexample.fixed_point_directions(10, {**point, "c": 0.5})


def test_counterexample_regret_is_the_definition():
    run = run_mada(202, 1e-2, {"beta1": 0.9, "beta2": 0.99, **ADAM_POINT}, record_every=1)
    previous = [0.0] + list(run.x[:-1])  # x_t is the iterate before step t's update
    regret = sum(gradient(t) * (x + 1.0) for t, x in zip(range(1, 203), previous))
    assert run.average_regret[-1] == pytest.approx(regret / 202, rel=1e-12)
    at_boundary = [t for t, x in zip(run.steps, run.x) if x == 1.0]
    assert run.first_step_at(1.0) == (at_boundary[0] if at_boundary else None)
    assert run.first_step_at(-1.0) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"lr": float("nan")}, "lr must be a finite positive number"),
        ({"record_every": 0}, "record_every"),
        ({"x0": 2.0}, "x0 must lie in"),
    ],
)
def test_counterexample_errors(kwargs, message):
    arguments = {"steps": 10, "lr": 1e-2, "record_every": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_amsgrad(**arguments)
