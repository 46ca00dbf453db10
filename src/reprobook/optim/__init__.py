"""Optimization methods: MADA, AVGrad and the adaptive baselines; bi-level methods and their proximal operators.

MADA and its runs live in their modules: `mada`, `adaptive`, `counterexample`, `special_points`, `lm_runs`.
"""

import lazy_loader

# Each name is imported from its module on first use, so that importing one tool does not
# import the libraries of all the others.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "bilevel": [
            "BilevelTrace",
            "GridRun",
            "bigsam",
            "bipg",
            "bisg",
            "fbipg",
            "fista_fixed_regularization",
            "fista_momentum",
            "fit_envelope_rate",
            "fit_rate",
            "iterations_to_reach",
            "product_grid",
            "proximal_gradient",
            "regularization_weight",
            "run_grid",
            "tail_supremum",
        ],
        "bilevel_problems": [
            "BilevelProblem",
            "basis_pursuit",
            "breast_cancer_logistic_l1",
            "classification_accuracy",
            "identity_prox",
            "is_linearly_separable",
            "nemirovski_instance",
            "nemirovski_matrix",
            "sparse_linear_inverse",
            "zero_function",
            "zero_gradient",
        ],
        "prox": ["project_box", "prox_box_plus_squared", "prox_l1", "prox_squared_distance", "soft_threshold"],
    },
)
