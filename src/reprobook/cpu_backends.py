"""No PyTorch backend that tunes its kernels to the CPU model, for the closed-loop notebooks.

The portable kernels of :mod:`reprobook.kernels` fix the instruction set that PyTorch, MKL and
oneDNN use. Two of PyTorch's CPU backends still adapt to the machine beyond its instruction set:
oneDNN, which PyTorch calls for convolutions of batches and for GELU, and NNPACK, which it calls
for some convolutions, size their blocks of work from the CPU's caches, so two CPUs with the same
instruction set can sum a convolution's gradient in different orders. A notebook that trains a
policy and then runs it in closed loop turns such last-bit differences into another outcome (one
episode of five flipped between an Intel Xeon and an AMD EPYC). :func:`use_model_independent_backends`
switches both backends off in the calling process: PyTorch then computes convolutions as
matrix products (MKL, in its reproducible mode) and GELU with its own kernels.
"""

from __future__ import annotations


def use_model_independent_backends() -> None:
    """Switch off oneDNN and NNPACK in this process (a spawned worker must call it again)."""
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
