"""Second-order methods: cubic regularized Newton (CRN), Krylov CRN and SSCN.

The chapter on *Krylov Cubic Regularized Newton* (Jiang, Raman, Sabach, Mokhtari, Hong,
Cevher, AISTATS 2024) uses:

* :mod:`~reprobook.secondorder.oracles` — objectives with counted gradients and HVPs
  (logistic regression on sparse data, quadratics, any torch loss);
* :mod:`~reprobook.secondorder.lanczos` — the Lanczos process (numpy or torch);
* :mod:`~reprobook.secondorder.cubic` — the cubic subproblem, convention (M/3)‖s‖³;
* :mod:`~reprobook.secondorder.methods` — CRN, Krylov CRN and SSCN with one trace, and
  SciPy's trust-krylov traced the same way;
* :mod:`~reprobook.secondorder.problems` — synthetic w8a/rcv1/news20-like data and
  spectral test problems (quadratics whose spectrum follows a fixed law at every d).
"""

from reprobook.secondorder.cubic import (
    CUBIC_DENOMINATOR,
    CubicSolution,
    CubicSubproblem,
    conjugate_gradient,
    cubic_model,
    solve_cubic,
    solve_cubic_cg,
    solve_cubic_tridiagonal,
)
from reprobook.secondorder.lanczos import LanczosResult, lanczos
from reprobook.secondorder.methods import (
    DENSE_LIMIT,
    M_FLOOR_RATIO,
    SecondOrderTrace,
    crn,
    krylov_crn,
    sscn,
    trust_krylov,
)
from reprobook.secondorder.oracles import LogisticOracle, Oracle, QuadraticOracle, TorchOracle
from reprobook.secondorder.problems import (
    SPECTRAL_LAWS,
    LogisticProblem,
    QuadraticProblem,
    logistic_with_spectrum,
    news20_like,
    quadratic_with_law,
    quadratic_with_spectrum,
    rcv1_like,
    shakespeare_ngram_logistic,
    w8a_like,
)

__all__ = [
    "CUBIC_DENOMINATOR",
    "DENSE_LIMIT",
    "M_FLOOR_RATIO",
    "SPECTRAL_LAWS",
    "CubicSolution",
    "CubicSubproblem",
    "LanczosResult",
    "LogisticOracle",
    "LogisticProblem",
    "Oracle",
    "QuadraticOracle",
    "QuadraticProblem",
    "SecondOrderTrace",
    "TorchOracle",
    "conjugate_gradient",
    "crn",
    "cubic_model",
    "krylov_crn",
    "lanczos",
    "logistic_with_spectrum",
    "news20_like",
    "quadratic_with_law",
    "quadratic_with_spectrum",
    "rcv1_like",
    "shakespeare_ngram_logistic",
    "solve_cubic",
    "solve_cubic_cg",
    "solve_cubic_tridiagonal",
    "sscn",
    "trust_krylov",
    "w8a_like",
]
