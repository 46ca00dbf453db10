"""Optimal design: the Plackett-Luce model and D-optimal designs by Frank-Wolfe (Dope, DopeWolfe),
greedy log-det selection of sentences (FisherSFT), the log-det core they share, the published
feature files and the chapters' experiments."""

import lazy_loader

# Each name is imported from its module on first use, so that importing one tool does not
# import the libraries of all the others.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "data": ["FEATURE_FILES", "Features", "load_features", "synthetic_features"],
        "experiments": [
            "loglog_slope",
            "mean_and_error",
            "round_design",
            "sample_subsets",
            "section61_experiment",
            "universe_experiment",
            "universe_items",
            "universe_losses",
        ],
        "frank_wolfe": [
            "FrankWolfeResult",
            "all_subsets",
            "design_information",
            "dope",
            "dopewolfe",
            "exact_step",
            "golden_section_step",
            "random_subsets",
            "subset_gains",
            "woodbury_update",
        ],
        "greedy": [
            "Selection",
            "greedy_logdet",
            "k_center",
            "logdet_objective",
            "mean_pooled",
            "pad_blocks",
            "pooled_d_optimal",
            "selection_orders",
            "softmax_weights",
            "subspace_sentences",
            "uniform_selection",
        ],
        "head": [
            "fit_head",
            "head_loss",
            "held_out_nll",
            "prediction_errors",
            "predictive_weights",
            "selection_experiment",
        ],
        "logdet": ["determinant_lemma_gains", "log_det", "woodbury"],
        "plackett_luce": [
            "design_factors",
            "design_matrices",
            "fisher_information",
            "fit_mle",
            "gradient",
            "hessian",
            "log_likelihood",
            "pair_error_rate",
            "pairwise_design_matrices",
            "ranking_loss",
            "sample_rankings",
        ],
    },
)
