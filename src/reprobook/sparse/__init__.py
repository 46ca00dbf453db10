"""The book's 2:4 sparsity core: structure and masks, the 2:4 proximal operator, layer-wise pruners,
the model-level driver and semi-structured execution."""

from reprobook.sparse.layerwise import (
    METHODS,
    ProxPath,
    calibration_hessian,
    exact_refit,
    local_loss,
    magnitude_mask,
    make_pruner,
    masked_refit,
    prox_prune,
    sparsegpt_24,
    wanda_mask,
)
from reprobook.sparse.model import audit_24, audit_summary, deploy_semi_structured, prune_causal_lm
from reprobook.sparse.prox import prox_24, prox_group, regularizer
from reprobook.sparse.semistructured import (
    SemiStructuredLinear,
    compress_24,
    compressed_linear,
    decompress_24,
    semi_structured_available,
)
from reprobook.sparse.structure import group_nonzeros, is_24, occupancy, sparsity, top2_mask

__all__ = [
    "METHODS",
    "ProxPath",
    "SemiStructuredLinear",
    "audit_24",
    "audit_summary",
    "calibration_hessian",
    "compress_24",
    "compressed_linear",
    "decompress_24",
    "deploy_semi_structured",
    "exact_refit",
    "group_nonzeros",
    "is_24",
    "local_loss",
    "magnitude_mask",
    "make_pruner",
    "masked_refit",
    "occupancy",
    "prox_24",
    "prox_group",
    "prox_prune",
    "prune_causal_lm",
    "regularizer",
    "semi_structured_available",
    "sparsegpt_24",
    "sparsity",
    "top2_mask",
    "wanda_mask",
]
