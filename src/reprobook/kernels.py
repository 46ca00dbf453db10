"""Portable CPU kernels, for the notebooks whose results amplify round-off.

A chapter usually prints only the digits that every CPU agrees on. A notebook that trains a
policy and then runs it in closed loop cannot: vector kernels (AVX2, AVX-512) and the math
library sum in different orders on different CPUs, the last-bit differences grow over a
thousand training steps, and a rollout turns a slightly different policy into another
outcome, a success instead of a failure. Such a notebook calls :func:`use_portable_kernels`
before anything imports PyTorch: PyTorch then runs its scalar kernels, Intel's math library
its conditional numerical reproducibility mode, and oneDNN (which PyTorch calls for some
element-wise functions, such as GELU, and for convolutions) its SSE4.1 kernels, which every
x86-64 CPU of the last fifteen years runs. None of them then depends on the CPU's vector
extensions, so the bits are the same with and without AVX2 and AVX-512 (checked by the book's
no-SIMD test variant and by ``tests/test_kernels.py``), at up to twice the time. The settings
are environment variables, so processes the notebook starts inherit them.

Every notebook, portable kernels or not, pins the code path of Intel's math library (MKL,
PyTorch's BLAS on x86) to its AVX2 branch (:func:`use_reproducible_blas`, called by
``start_notebook``): left to itself, MKL runs other kernels on Intel CPUs with AVX-512 than on
AVX2 machines and on AMD's, and a preference-trained model then printed 0.25 instead of 0.26
(c3dpo, notebook 2) on one such Xeon. MKL reads the setting at its first product, so it takes
effect after PyTorch is imported too.
"""

from __future__ import annotations

import os
import sys

PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}
#: MKL's code path in every notebook: the AVX2 branch of its conditional numerical reproducibility mode.
REPRODUCIBLE_BLAS = {"MKL_CBWR": "AVX2"}


def use_portable_kernels() -> None:
    """Select the portable kernels; must run before ``torch`` is imported in this process."""
    if "torch" in sys.modules:
        raise RuntimeError("use_portable_kernels() must run before torch is imported (first in the notebook)")
    os.environ.update(PORTABLE_KERNELS)


def use_reproducible_blas() -> None:
    """Pin MKL to its AVX2 branch, unless the environment already chose one (the portable kernels'
    own, or a test variant's); it must run before the process's first matrix product."""
    for name, value in REPRODUCIBLE_BLAS.items():
        os.environ.setdefault(name, value)


def portable_kernels_in_use() -> bool:
    """Whether PyTorch runs its scalar kernels (it reads the setting when first used)."""
    import torch

    return torch.backends.cpu.get_cpu_capability() == "DEFAULT"
