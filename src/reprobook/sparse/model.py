"""Pruning a ``transformers`` causal language model to 2:4, block by block.

As in SparseGPT and Wanda, the transformer blocks are pruned in order and each block
sees the outputs of the blocks already pruned: the calibration sequences are run up to
the first block once, and then through one block at a time. Inside a block, forward
hooks accumulate ``H = X^T X / n`` of the input of every linear layer; every linear
layer of the block is pruned from its H, and the pruned block then computes the inputs
of the next one. The embeddings and the output head stay dense, as in those papers.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from reprobook.sparse.layerwise import local_loss
from reprobook.sparse.semistructured import SemiStructuredLinear
from reprobook.sparse.structure import is_24, occupancy

#: A layer pruner: (weight W0, H) -> a 2:4 weight of the same shape.
Pruner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _StopForward(Exception):
    """Raised by the hook that captures the first block's inputs, to skip the rest of the model."""


#: Where ``transformers`` causal LMs keep their decoder blocks: LLaMA, Mistral, Qwen; OPT.
BLOCK_PATHS = ("model.layers", "model.decoder.layers")


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks of a ``transformers`` causal LM (LLaMA, Mistral and Qwen, or OPT)."""
    for path in BLOCK_PATHS:
        try:
            blocks = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(blocks, nn.ModuleList):
            return blocks
    raise TypeError(
        "model must be a transformers causal LM with decoder blocks at "
        f"{' or '.join('model.' + path for path in BLOCK_PATHS)}, got {type(model).__name__}"
    )


def block_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers of one block, by name (q/k/v/o projections and the MLP)."""
    return {name: module for name, module in block.named_modules() if isinstance(module, nn.Linear)}


@torch.no_grad()
def first_block_inputs(model: nn.Module, calibration: torch.Tensor, batch_size: int) -> list[tuple]:
    """(args, kwargs) of the first block's call for every batch of calibration sequences."""
    captured = []

    def capture(module, args, kwargs):
        captured.append((args, kwargs))
        raise _StopForward

    handle = transformer_blocks(model)[0].register_forward_pre_hook(capture, with_kwargs=True)
    try:
        for batch in calibration.split(batch_size):
            try:
                model(input_ids=batch, use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def block_hessians(block: nn.Module, inputs: list[tuple]) -> dict[str, torch.Tensor]:
    """H = X^T X / n of the input of every linear layer of ``block`` over all calibration batches."""
    linears = block_linears(block)
    sums = {
        name: torch.zeros(m.in_features, m.in_features, dtype=torch.float64, device=m.weight.device)
        for name, m in linears.items()
    }
    counts = dict.fromkeys(linears, 0)

    def accumulate(name):
        def hook(module, args):
            x = args[0].reshape(-1, args[0].shape[-1]).to(torch.float64)
            sums[name] += x.T @ x
            counts[name] += x.shape[0]

        return hook

    handles = [m.register_forward_pre_hook(accumulate(name)) for name, m in linears.items()]
    try:
        for args, kwargs in inputs:
            block(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: sums[name] / counts[name] for name in linears}


@torch.no_grad()
def prune_causal_lm(model: nn.Module, calibration: torch.Tensor, pruner: Pruner, batch_size: int = 8) -> pd.DataFrame:
    """Prune every linear layer of every block to 2:4 in place; return the per-layer local losses.

    ``calibration`` holds token ids, shape (sequences, length). ``pruner(W0, H)`` returns
    the new weight (computed in float64 on the layer's device, stored in its dtype). The
    report has one row per layer: block, name, shape, local loss, and that loss relative
    to 1/2 tr(W0 H W0^T) (the loss of removing the layer).
    """
    if not isinstance(calibration, torch.Tensor) or calibration.ndim != 2 or calibration.dtype != torch.long:
        raise ValueError("calibration must be a 2-D tensor of token ids (sequences, length) of dtype long")
    blocks = transformer_blocks(model)
    was_training = model.training
    model.eval()
    rows = []
    try:
        inputs = first_block_inputs(model, calibration, batch_size)
        for index, block in enumerate(blocks):
            hessians = block_hessians(block, inputs)
            for name, linear in block_linears(block).items():
                original = linear.weight.detach().to(torch.float64)
                pruned = pruner(original, hessians[name])
                if pruned.shape != original.shape or not is_24(pruned):
                    raise RuntimeError(f"the pruner returned a weight that is not 2:4 for block {index} {name}")
                loss = local_loss(pruned, original, hessians[name])
                removed = local_loss(torch.zeros_like(original), original, hessians[name])
                rows.append(
                    {
                        "block": index,
                        "name": name,
                        "shape": tuple(original.shape),
                        "local_loss": loss,
                        "relative_loss": loss / removed,
                    }
                )
                linear.weight.copy_(pruned.to(linear.weight.dtype))
            inputs = [((_hidden(block(*args, **kwargs)),) + tuple(args[1:]), kwargs) for args, kwargs in inputs]
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


def audit_24(model: nn.Module) -> pd.DataFrame:
    """The 2:4 audit of every linear layer of the blocks: groups by number of non-zeros, and validity."""
    rows = []
    for index, block in enumerate(transformer_blocks(model)):
        for name, linear in block_linears(block).items():
            counts = occupancy(linear.weight.detach())
            rows.append(
                {
                    "block": index,
                    "layer": name,
                    **{f"{k} non-zeros": counts[k] for k in range(5)},
                    "2:4": is_24(linear.weight.detach()),
                }
            )
    return pd.DataFrame(rows)


def audit_summary(models: dict[str, nn.Module]) -> pd.DataFrame:
    """One row per named model: its groups by number of non-zeros over all layers, and whether it is 2:4."""
    columns = [f"{k} non-zeros" for k in range(5)]
    rows = {}
    for name, model in models.items():
        audit = audit_24(model)
        rows[name] = {**audit[columns].sum().to_dict(), "2:4": bool(audit["2:4"].all())}
    return pd.DataFrame.from_dict(rows, orient="index")


def deploy_semi_structured(model: nn.Module) -> list[SemiStructuredLinear]:
    """Replace every linear layer of the blocks by a :class:`SemiStructuredLinear` in place; return them.

    Every replaced weight must already be 2:4 (checked before anything is replaced). On a GPU
    of capability 8.0 or later with half-precision weights the layers run on the sparse
    kernels, elsewhere on the fallback.
    """
    for index, block in enumerate(transformer_blocks(model)):
        for name, linear in block_linears(block).items():
            if not is_24(linear.weight.detach()):
                raise ValueError(f"the weight of block {index} {name} is not 2:4: prune the model first")
    deployed = []
    for block in transformer_blocks(model):
        for name, linear in block_linears(block).items():
            parent, _, attribute = name.rpartition(".")
            layer = SemiStructuredLinear.from_linear(linear)
            setattr(block.get_submodule(parent) if parent else block, attribute, layer)
            deployed.append(layer)
    return deployed
