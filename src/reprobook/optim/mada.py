"""MADA: a meta-adaptive optimizer whose coefficients are learned by hypergradient descent.

Ozkara et al. (ICML 2024, arXiv:2401.08893). One update, per parameter tensor, with the
gradient g_t at step t ≥ 1 and the coefficients κ = (β1, β2, β3, ρ, c, γ):

    ĝ_t   = g_t + β3 (g_t − g_{t−1})                               Adan's look-ahead gradient
    g̃²_t  = c ĝ_t² + (1 − c)(v_{t−1} + ĝ_t² sign(ĝ_t² − v_{t−1}))  c = 1: Adam, c = 0: Yogi
    m_t   = β1 m_{t−1} + (1 − β1) g_t
    v_t   = β2 v_{t−1} + (1 − β2) g̃²_t
    n_t   = β3 n_{t−1} + (1 − β3)(g_t − g_{t−1})                  Adan's difference momentum
    v̄_t   = (v_t + (t − 1) v̄_{t−1}) / t                           AVGrad's time average (no gradient)
    m^L_t = β2ᴸ m^L_{t−1} + (1 − β2ᴸ) g_t;  u_t = β1ᴸ m^L_t + (1 − β1ᴸ) g_t     Lion, fixed β^L
    m̂_t   = m_t / (1 − β1^t);   v̂_t = (ρ v_t + (1 − ρ) v̄_t) / (1 − β2^t)     ρ = 1: Adam, ρ = 0: AVGrad
    Δ_t   = γ (m̂_t + β3 n_t) / (√v̂_t + ε) + (1 − γ) sign(u_t)              γ = 0: Lion
    θ_t   = (1 − α_t λ) θ_{t−1} − α_t Δ_t                                  decoupled weight decay λ

The special points: (β3, ρ, c, γ) = (0, 1, 1, 1) is Adam; ρ = 0 is AVGrad; c = 0 gives Yogi's
second moment; γ = 0 is Lion's sign step.

**The hypergradient** (one step unrolled, as in the official code): the next loss
L(θ_t) depends on κ through Δ_t only, so ∂L/∂κ = −α_t ⟨∇L(θ_t), ∂Δ_t/∂κ⟩, a vector-Jacobian
product. At step t + 1 the optimizer recomputes Δ_t(κ) from the states it kept, with the
gradient ∇L(θ_t) it has just received as the cotangent, and takes a step of its
hyper-optimizer, ``torch.optim.SGD`` with one learning rate and momentum per coefficient;
each hypergradient is first clipped to ``hypergradient_clip`` in absolute value and the
coefficients are then clamped into their boxes :data:`BOXES`. Parameters stay ordinary leaf
tensors; only the optimizer's states are extra. The first hyper-step comes after
``max(hyper_start, 1)`` updates.

The hypergradient uses the gradient the optimizer receives: when the training loop clips the
gradient norm before ``step()``, the hypergradient is scaled by the same factor (the official
code takes it before clipping).

**Quirks of the official code**, options on by default:

- ``eps_outside_sqrt=True``: ε is added to √v̂ (False: √(v̂ + ε²), ε inside the root);
- ``initial_v=1e-15``: the initial v and v̄ (0 for the textbook methods);
- ``beta2_floor=0.501``: the lower end of β2's box (0.01 is the others' floor);
- ``n_starts_at_grad_squared=True``: Adan's n starts at g_1² instead of 0;
- ``lion_updated_momentum=True``: Lion's u uses the momentum *after* its update (textbook Lion
  takes m^L_{t−1}).

**The official training loop's previous gradient**, an option off by default:
``zeroed_previous_grad=True`` takes g_{t−1} = 0 in ĝ_t and n_t, so that ĝ_t = (1 + β3) g_t and
n_t = β3 n_{t−1} + (1 − β3) g_t, a moving average of the gradient instead of Adan's
difference momentum. This is what the official GPT-2 and Shakespeare runs computed: the
official optimizer keeps g_{t−1} as a view of the parameter's gradient, and the training
loop's ``zero_grad()`` after every step zeroes that gradient, and the kept copy with it, in
place. The default (False) is the update as the equations above state it, Adan's
g_t + β3 (g_t − g_{t−1}).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

#: The learned coefficients, in the paper's order.
COEFFICIENTS = ("beta1", "beta2", "beta3", "rho", "c", "gamma")
#: The boxes of the official code; β2's floor is the option ``beta2_floor``.
BOXES = {
    "beta1": (0.01, 0.99),
    "beta2": (0.501, 0.99),
    "beta3": (0.0, 0.99),
    "rho": (0.0, 1.0),
    "c": (0.0, 1.0),
    "gamma": (0.0, 1.0),
}
#: The hyper-learning rates of the official GPT-2 runs (momentum 0).
PAPER_HYPER_LR = {"beta1": 5e-4, "beta2": 5e-4, "beta3": 0.1, "rho": 0.1, "c": 0.1, "gamma": 0.1}
#: Lion's fixed (β1ᴸ, β2ᴸ), the values the official code uses for GPT-2.
LION_BETAS = (0.95, 0.98)
#: What the optimizer keeps per parameter to compute and to recompute Δ_t.
STATE_KEYS = ("m", "v", "v_mean", "n", "grad", "lion_m")


def _finite_number(name: str, value, lower: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < lower:
        bound = "" if lower == -math.inf else f" >= {lower}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def _per_coefficient(name: str, values: Mapping[str, float] | None) -> dict[str, float]:
    """A value for every coefficient (0 for those not named), each finite and non-negative."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(COEFFICIENTS))
    if unknown:
        raise ValueError(f"{name} has unknown coefficients {unknown}; expected some of {list(COEFFICIENTS)}")
    return {k: _finite_number(f"{name}[{k!r}]", values.get(k, 0.0), 0.0) for k in COEFFICIENTS}


def mada_direction(
    grad: torch.Tensor,
    previous: Mapping[str, torch.Tensor],
    kappa: Mapping[str, torch.Tensor | float],
    step: int,
    eps: float,
    eps_outside_sqrt: bool = True,
    lion_betas: tuple[float, float] = LION_BETAS,
    lion_updated_momentum: bool = True,
    zeroed_previous_grad: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Δ_t and the new states of one MADA update (the equations of the module docstring).

    ``previous`` holds the states after step t − 1 (``STATE_KEYS``); ``kappa`` the coefficients,
    tensors that may require gradients. Differentiable in κ, except through v̄ and sign(u).
    ``zeroed_previous_grad`` takes g_{t−1} = 0, as the official training loop did (module
    docstring): then ĝ_t = (1 + β3) g_t and n_t averages g_t.
    """
    beta1, beta2, beta3, rho, c, gamma = (kappa[k] for k in COEFFICIENTS)
    difference = grad if zeroed_previous_grad else grad - previous["grad"]
    look_ahead = grad + beta3 * difference
    look_ahead_sq = look_ahead * look_ahead
    v_prev = previous["v"]
    second = c * look_ahead_sq + (1 - c) * (v_prev + look_ahead_sq * torch.sign(look_ahead_sq - v_prev))
    m = beta1 * previous["m"] + (1 - beta1) * grad
    v = beta2 * v_prev + (1 - beta2) * second
    n = beta3 * previous["n"] + (1 - beta3) * difference
    v_mean = ((v + (step - 1) * previous["v_mean"]) / step).detach()
    lion_beta1, lion_beta2 = lion_betas
    lion_m = lion_beta2 * previous["lion_m"] + (1 - lion_beta2) * grad
    lion_u = lion_beta1 * (lion_m if lion_updated_momentum else previous["lion_m"]) + (1 - lion_beta1) * grad
    m_hat = m / (1 - beta1**step)
    v_hat = (rho * v + (1 - rho) * v_mean) / (1 - beta2**step)
    # where v̂ is 0 (a weight that never had a gradient) √ has an infinite slope: keep it finite
    v_hat = v_hat.clamp_min(torch.finfo(v_hat.dtype).tiny)
    denominator = v_hat.sqrt() + eps if eps_outside_sqrt else (v_hat + eps * eps).sqrt()
    direction = gamma * (m_hat + beta3 * n) / denominator + (1 - gamma) * torch.sign(lion_u)
    states = {"m": m, "v": v, "v_mean": v_mean, "n": n, "grad": grad, "lion_m": lion_m}
    return direction, {k: s.detach() for k, s in states.items()}


class MADA(torch.optim.Optimizer):
    """MADA with hypergradient-learned coefficients; the module docstring has the equations.

    ``hyper_lr`` and ``hyper_momentum`` map coefficient names to the hyper-optimizer's
    learning rate and momentum; a coefficient not named (or with rate 0) stays fixed, so
    ``hyper_lr={}`` is a plain optimizer at the point κ. ``weight_decay`` is decoupled and
    applied before the update, as in AdamW. ``coefficient_trace`` lists κ after each step,
    ``last_hypergradient`` the hypergradients of the last hyper-step (after clipping).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.95,
        beta3: float = 0.0,
        rho: float = 0.0,
        c: float = 1.0,
        gamma: float = 1.0,
        hyper_lr: Mapping[str, float] | None = None,
        hyper_momentum: Mapping[str, float] | None = None,
        hypergradient_clip: float | None = 10.0,
        hyper_start: int = 0,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        eps_outside_sqrt: bool = True,
        initial_v: float = 1e-15,
        beta2_floor: float = 0.501,
        n_starts_at_grad_squared: bool = True,
        lion_betas: tuple[float, float] = LION_BETAS,
        lion_updated_momentum: bool = True,
        zeroed_previous_grad: bool = False,
    ):
        _finite_number("lr", lr, 0.0)
        _finite_number("eps", eps, 0.0)
        _finite_number("weight_decay", weight_decay, 0.0)
        _finite_number("initial_v", initial_v, 0.0)
        self.boxes = {**BOXES, "beta2": (_finite_number("beta2_floor", beta2_floor, 0.0), BOXES["beta2"][1])}
        if not self.boxes["beta2"][0] < self.boxes["beta2"][1]:
            raise ValueError(f"beta2_floor must be below {BOXES['beta2'][1]}, got {beta2_floor}")
        initial = {"beta1": beta1, "beta2": beta2, "beta3": beta3, "rho": rho, "c": c, "gamma": gamma}
        for name, value in initial.items():
            low, high = self.boxes[name]
            if not low <= _finite_number(name, value) <= high:
                raise ValueError(f"{name} must lie in its box [{low}, {high}], got {value!r}")
        if hypergradient_clip is not None:
            _finite_number("hypergradient_clip", hypergradient_clip, 0.0)
        if isinstance(hyper_start, bool) or not isinstance(hyper_start, int) or hyper_start < 0:
            raise ValueError(f"hyper_start must be a non-negative integer, got {hyper_start!r}")
        if len(lion_betas) != 2 or not all(0.0 <= _finite_number("lion_betas", b) < 1.0 for b in lion_betas):
            raise ValueError(f"lion_betas must be two numbers in [0, 1), got {lion_betas!r}")
        if not isinstance(zeroed_previous_grad, bool):
            raise ValueError(f"zeroed_previous_grad must be True or False, got {zeroed_previous_grad!r}")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        for index, p in enumerate(p for group in self.param_groups for p in group["params"]):
            if not p.requires_grad:
                raise ValueError(f"parameter {index} does not require gradients; leave it out of the optimizer")
        self.coefficients = {k: torch.tensor(float(v), dtype=torch.float64) for k, v in initial.items()}
        self.hyper_lr = _per_coefficient("hyper_lr", hyper_lr)
        self.hyper_momentum = _per_coefficient("hyper_momentum", hyper_momentum)
        self.learned = tuple(k for k in COEFFICIENTS if self.hyper_lr[k] > 0)
        self.hyper_optimizer = (
            torch.optim.SGD(
                [
                    {"params": [self.coefficients[k]], "lr": self.hyper_lr[k], "momentum": self.hyper_momentum[k]}
                    for k in self.learned
                ]
            )
            if self.learned
            else None
        )
        self.options = {
            "eps": eps,
            "eps_outside_sqrt": eps_outside_sqrt,
            "lion_betas": tuple(lion_betas),
            "lion_updated_momentum": lion_updated_momentum,
            "zeroed_previous_grad": bool(zeroed_previous_grad),
        }
        self.hypergradient_clip = hypergradient_clip
        self.hyper_start = hyper_start
        self.initial_v = initial_v
        self.n_starts_at_grad_squared = n_starts_at_grad_squared
        self.steps = 0
        self.coefficient_trace: list[dict[str, float]] = []
        self.last_hypergradient: dict[str, float] = {}

    def __getstate__(self) -> dict:
        """Everything, so that ``copy.deepcopy`` and ``pickle`` keep κ and the hyper-optimizer."""
        return dict(self.__dict__)

    def current_coefficients(self) -> dict[str, float]:
        """κ now, as floats."""
        return {k: v.item() for k, v in self.coefficients.items()}

    def _initial_state(self, grad: torch.Tensor) -> dict[str, torch.Tensor]:
        zeros = torch.zeros_like(grad)
        return {
            "m": zeros,
            "v": torch.full_like(grad, self.initial_v),
            "v_mean": torch.full_like(grad, self.initial_v),
            "n": grad * grad if self.n_starts_at_grad_squared else zeros,
            "grad": zeros,
            "lion_m": zeros,
        }

    def _group_gradients(self) -> list[tuple[dict, dict, torch.Tensor]]:
        """For each parameter group: its state, its settings, and its gradients flattened into one vector.

        A group's states are kept flattened too, under its first parameter, so that one update
        is a few dozen operations on long vectors rather than on every small tensor.
        """
        found = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    raise ValueError(
                        f"a parameter of shape {tuple(p.shape)} has no gradient; MADA needs the gradient of "
                        "every parameter it optimizes (call backward() first, or leave the parameter out)"
                    )
                if p.grad.is_sparse:
                    raise ValueError("MADA does not support sparse gradients")
            flat = torch.cat([p.grad.reshape(-1) for p in group["params"]])
            found.append((self.state[group["params"][0]], group, flat))
        return found

    def _hyper_step(self, gradients) -> None:
        """One hyper-step on κ from the hypergradient −α_t ⟨∇L(θ_t), ∂Δ_t/∂κ⟩ (module docstring)."""
        kappa = {k: v.detach().requires_grad_(k in self.learned) for k, v in self.coefficients.items()}
        directions, cotangents = [], []
        with torch.enable_grad():
            for state, _, grad in gradients:
                current = state["current"]
                direction, _ = mada_direction(current["grad"], state["previous"], kappa, self.steps, **self.options)
                directions.append(direction)
                cotangents.append(-state["lr"] * grad)
            hypergradients = torch.autograd.grad(
                directions, [kappa[k] for k in self.learned], cotangents, allow_unused=True
            )
        for name, hypergradient in zip(self.learned, hypergradients):
            hypergradient = torch.zeros((), dtype=torch.float64) if hypergradient is None else hypergradient
            if not torch.isfinite(hypergradient):
                raise FloatingPointError(f"the hypergradient of {name} is {hypergradient.item()} at step {self.steps}")
            if self.hypergradient_clip is not None:
                hypergradient = hypergradient.clamp(-self.hypergradient_clip, self.hypergradient_clip)
            self.coefficients[name].grad = hypergradient.to(self.coefficients[name].dtype)
            self.last_hypergradient[name] = hypergradient.item()
        self.hyper_optimizer.step()
        self.hyper_optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, value in self.coefficients.items():
                value.clamp_(*self.boxes[name])

    @torch.no_grad()
    def step(self, closure=None):
        """One MADA step: a hyper-step on κ (after ``hyper_start`` steps), then the update."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        gradients = self._group_gradients()
        if self.learned and self.steps >= max(self.hyper_start, 1):
            self._hyper_step(gradients)
        self.steps += 1
        kappa = {k: v.detach() for k, v in self.coefficients.items()}
        for state, group, grad in gradients:
            previous = state.get("current") or self._initial_state(grad)
            direction, current = mada_direction(grad, previous, kappa, self.steps, **self.options)
            if self.learned:
                state["previous"] = previous
            state["current"] = current
            state["lr"] = group["lr"]
            params = group["params"]
            torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            updates = [d.view_as(p) for d, p in zip(direction.split([p.numel() for p in params]), params)]
            torch._foreach_add_(params, updates, alpha=-group["lr"])
        self.coefficient_trace.append(self.current_coefficients())
        return loss

    def state_dict(self) -> dict:
        """The optimizer's state with κ, the hyper-optimizer, the step count and the trace."""
        state = super().state_dict()
        state["mada"] = {
            "coefficients": self.current_coefficients(),
            "hyper_optimizer": self.hyper_optimizer.state_dict() if self.hyper_optimizer else None,
            "steps": self.steps,
            "coefficient_trace": [dict(row) for row in self.coefficient_trace],
        }
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`; a resumed run continues exactly as the original."""
        state_dict = dict(state_dict)
        if "mada" not in state_dict:
            raise ValueError("state_dict is not a MADA state: it has no 'mada' entry")
        mada = state_dict.pop("mada")
        super().load_state_dict(state_dict)
        with torch.no_grad():
            for name, value in mada["coefficients"].items():
                self.coefficients[name].fill_(value)
        if self.hyper_optimizer is not None:
            self.hyper_optimizer.load_state_dict(mada["hyper_optimizer"])
        self.steps = mada["steps"]
        self.coefficient_trace = [dict(row) for row in mada["coefficient_trace"]]


def hyper_adam(params: Iterable, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.95, **kwargs) -> MADA:
    """HyperAdam: Adam whose β1 and β2 are learned by the same hypergradient machinery.

    MADA at (β3, ρ, c, γ) = (0, 1, 1, 1) with only β1 and β2 learned (the paper's baseline).
    """
    hyper_lr = kwargs.pop("hyper_lr", {k: PAPER_HYPER_LR[k] for k in ("beta1", "beta2")})
    unknown = sorted(set(hyper_lr) - {"beta1", "beta2"})
    if unknown:
        raise ValueError(f"HyperAdam learns only beta1 and beta2; hyper_lr names {unknown}")
    return MADA(params, lr, beta1, beta2, beta3=0.0, rho=1.0, c=1.0, gamma=1.0, hyper_lr=hyper_lr, **kwargs)
