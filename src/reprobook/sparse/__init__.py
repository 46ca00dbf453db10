"""The book's 2:4 sparsity core: structure and masks, the 2:4 proximal operator, layer-wise pruners,
the model-level driver and semi-structured execution."""

import lazy_loader

# Each name is imported from its module on first use, so that importing one tool does not
# import the libraries of all the others.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "layerwise": [
            "METHODS",
            "ProxPath",
            "calibration_hessian",
            "exact_refit",
            "local_loss",
            "magnitude_mask",
            "make_pruner",
            "masked_refit",
            "prox_prune",
            "sparsegpt_24",
            "wanda_mask",
        ],
        "model": ["audit_24", "audit_summary", "deploy_semi_structured", "prune_causal_lm"],
        "prox": ["prox_24", "prox_group", "regularizer"],
        "semistructured": [
            "SemiStructuredLinear",
            "compress_24",
            "compressed_linear",
            "decompress_24",
            "semi_structured_available",
        ],
        "structure": ["group_nonzeros", "is_24", "occupancy", "sparsity", "top2_mask"],
    },
)
