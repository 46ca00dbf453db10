"""The DPO family as classification on the implicit reward margin, and the C2-DPO constraint.

Notation (Asadi et al. 2025, arXiv:2502.17507, C-3DPO in v1, C2-DPO in v2). For a prompt x,
a chosen response y_w and a rejected y_l, the per-response log-ratios are

    ρ_w = log π_θ(y_w|x) − log π_ref(y_w|x),    ρ_l = log π_θ(y_l|x) − log π_ref(y_l|x),

and the implicit classifier over the two classes {w, l} has the logit h = β (ρ_w − ρ_l):
q_θ(w) = σ(h), q_θ(l) = σ(−h). Each loss below is a choice of label distribution p = (p_w, p_l)
and of a loss between p and q_θ:

================  =====================  ===========================================================
name              label p_w              loss of the margin
================  =====================  ===========================================================
``dpo``           1 (or 1 − ε: cDPO)     cross-entropy −p_w log σ(h) − p_l log σ(−h)
``robust``        1 − ε (noisy labels)   the unbiased estimator of the clean cross-entropy (rDPO)
``exo``           1 − ε                  KL(q_θ ‖ p), the reverse KL (EXO)
``hinge``         1                      max(0, 1 − h) (SLiC)
``ipo``           1                      (ρ_w − ρ_l − 1/(2β))², squared loss to a finite margin
================  =====================  ===========================================================

Every one of them depends on (ρ_w, ρ_l) only through ρ_w − ρ_l: the problem is under-specified,
and ρ_w and ρ_l may fall together while the loss improves ("probability collapse"). The
constraint φ(π_θ(y_w)) + φ(π_θ(y_l)) = φ(π_ref(y_w)) + φ(π_ref(y_l)), φ increasing, pins the
free direction; it enters the loss as a quadratic penalty λ · mean(c²) on its violation c.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSSES = ("dpo", "robust", "exo", "hinge", "ipo")
CONSTRAINTS = ("log", "identity")


def _check(name: str, value: float, low: float, high: float, closed_low: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low <= value if closed_low else low < value) and value < high
    if not ok:
        bracket = "[" if closed_low else "("
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}), got {value!r}")
    return float(value)


def classification_loss(
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    beta: float = 0.1,
    loss: str = "dpo",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The per-pair loss of a DPO-family member (the table of the module docstring).

    ``label_smoothing`` is ε, the label mass on the rejected class (``dpo``: ε = 0 is DPO,
    ε > 0 cDPO; ``robust`` and ``exo`` need 0 < ε < 1/2; ``hinge`` and ``ipo`` take hard labels).
    ``ipo`` uses β as IPO's τ, on the log-ratios as given (sum them, or average them over the
    tokens for the length-normalized IPO).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    beta = _check("beta", beta, 0.0, math.inf, closed_low=False)
    needs_soft = loss in ("robust", "exo")
    epsilon = _check("label_smoothing", label_smoothing, 0.0, 0.5, closed_low=not needs_soft)
    if loss in ("hinge", "ipo") and epsilon:
        raise ValueError(f"the {loss} loss takes hard labels: label_smoothing must be 0, got {label_smoothing!r}")
    difference = chosen_logratios - rejected_logratios
    h = beta * difference
    if loss == "dpo":
        return -(1 - epsilon) * F.logsigmoid(h) - epsilon * F.logsigmoid(-h)
    if loss == "robust":
        return (-(1 - epsilon) * F.logsigmoid(h) + epsilon * F.logsigmoid(-h)) / (1 - 2 * epsilon)
    if loss == "exo":
        q_w, q_l = torch.sigmoid(h), torch.sigmoid(-h)
        return q_w * (F.logsigmoid(h) - math.log1p(-epsilon)) + q_l * (F.logsigmoid(-h) - math.log(epsilon))
    if loss == "hinge":
        return torch.relu(1 - h)
    return (difference - 1 / (2 * beta)) ** 2


def constraint_violation(
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    kind: str = "log",
    reference_chosen_logps: torch.Tensor | None = None,
    reference_rejected_logps: torch.Tensor | None = None,
) -> torch.Tensor:
    """c, the violation of the constraint φ(π_θ(y_w)) + φ(π_θ(y_l)) = φ(π_ref(y_w)) + φ(π_ref(y_l)).

    ``log`` (φ = log): c = ρ_w + ρ_l. ``identity`` (φ = id): the change of the pair's total
    probability relative to the reference's, c = (π_θ(y_w) + π_θ(y_l)) / (π_ref(y_w) + π_ref(y_l)) − 1
    = s_w (e^{ρ_w} − 1) + s_l (e^{ρ_l} − 1) with s the reference's probabilities normalized over
    the pair. (Normalizing is this book's choice: whole-sequence probabilities are too small to
    penalize unscaled; the paper's exact form is not known.) It needs the reference log-probabilities.
    """
    if kind == "log":
        return chosen_logratios + rejected_logratios
    if kind != "identity":
        raise ValueError(f"kind must be one of {list(CONSTRAINTS)}, got {kind!r}")
    if reference_chosen_logps is None or reference_rejected_logps is None:
        raise ValueError("the identity constraint needs reference_chosen_logps and reference_rejected_logps")
    shares = torch.softmax(torch.stack([reference_chosen_logps, reference_rejected_logps]), dim=0)
    return shares[0] * torch.expm1(chosen_logratios) + shares[1] * torch.expm1(rejected_logratios)


def preference_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss: str = "dpo",
    label_smoothing: float = 0.0,
    constraint: str | None = None,
    penalty: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The batch loss mean(ℓ(h)) + λ mean(c²), and the quantities a run logs.

    ``constraint`` None is the unconstrained family member; ``"log"`` or ``"identity"`` with
    ``penalty`` λ > 0 is C2-DPO's penalty form. Returns the loss and, detached: the chosen and
    rejected log-ratios, the margins ρ_w − ρ_l, the preference accuracy (ρ_w > ρ_l) and c.
    """
    penalty = _check("penalty", penalty, 0.0, math.inf)
    if constraint is None and penalty:
        raise ValueError(f"penalty is {penalty!r} but constraint is None: name the constraint ('log' or 'identity')")
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    total = classification_loss(chosen, rejected, beta, loss, label_smoothing).mean()
    violation = (
        constraint_violation(chosen, rejected, constraint, reference_chosen_logps, reference_rejected_logps)
        if constraint is not None
        else chosen + rejected
    )
    if constraint is not None:
        total = total + penalty * (violation**2).mean()
    metrics = {
        "chosen_logratio": chosen.detach(),
        "rejected_logratio": rejected.detach(),
        "margin": (chosen - rejected).detach(),
        "accuracy": (chosen > rejected).detach().double(),
        "violation": violation.detach(),
    }
    return total, metrics
