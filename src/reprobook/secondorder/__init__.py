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

import lazy_loader

# Each name is imported from its module on first use, so that importing one tool does not
# import the libraries of all the others.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "cubic": [
            "CUBIC_DENOMINATOR",
            "CubicSolution",
            "CubicSubproblem",
            "conjugate_gradient",
            "cubic_model",
            "solve_cubic",
            "solve_cubic_cg",
            "solve_cubic_tridiagonal",
        ],
        "lanczos": ["LanczosResult", "lanczos"],
        "methods": ["DENSE_LIMIT", "M_FLOOR_RATIO", "SecondOrderTrace", "crn", "krylov_crn", "sscn", "trust_krylov"],
        "oracles": ["LogisticOracle", "Oracle", "QuadraticOracle", "TorchOracle"],
        "problems": [
            "SPECTRAL_LAWS",
            "LogisticProblem",
            "QuadraticProblem",
            "logistic_with_spectrum",
            "news20_like",
            "quadratic_with_law",
            "quadratic_with_spectrum",
            "rcv1_like",
            "shakespeare_ngram_logistic",
            "w8a_like",
        ],
    },
)
