"""Running 2:4 weights: PyTorch's semi-structured sparse kernels on a GPU, a dense fallback elsewhere.

NVIDIA GPUs of compute capability 8.0 and later multiply a 2:4 weight stored in a
compressed format (the two kept values of each group, plus 2-bit positions) on their
sparse tensor cores, in float16 or bfloat16. :class:`SemiStructuredLinear` uses them
through ``torch.sparse.to_sparse_semi_structured`` when they are available and
otherwise multiplies by the dense masked weight, computing the same function.
:func:`compress_24` and :func:`decompress_24` are a plain-tensor version of the
compressed format, so the layout can be checked on any machine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprobook.sparse.structure import check_weight, is_24, top2_mask

KERNEL_DTYPES = (torch.float16, torch.bfloat16)


def semi_structured_available(device: torch.device | str, dtype: torch.dtype) -> bool:
    """Whether PyTorch's 2:4 kernels run on ``device`` for ``dtype`` (CUDA, capability >= 8.0, fp16/bf16)."""
    device = torch.device(device)
    return (
        device.type == "cuda"
        and torch.cuda.is_available()
        and dtype in KERNEL_DTYPES
        and torch.cuda.get_device_capability(device) >= (8, 0)
    )


def check_24(name: str, weight: torch.Tensor) -> torch.Tensor:
    """Return ``weight`` after checking it is a finite 2:4 weight."""
    check_weight(name, weight)
    if not is_24(weight):
        raise ValueError(f"{name} must be 2:4: at most 2 non-zeros in every group of 4 inputs")
    return weight


def compress_24(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The compressed 2:4 format: values (out, in/2) and their positions 0..3 within each group (uint8).

    A group with fewer than two non-zeros stores zeros at the first free positions.
    """
    check_24("weight", weight)
    grouped = weight.view(weight.shape[0], -1, 4)
    keep = top2_mask((weight != 0).to(torch.float32)).view_as(grouped)
    positions = torch.nonzero(keep)[:, 2].view(weight.shape[0], -1, 2)
    values = torch.gather(grouped, 2, positions)
    return values.reshape(weight.shape[0], -1), positions.reshape(weight.shape[0], -1).to(torch.uint8)


def decompress_24(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The dense weight of a compressed 2:4 format (the inverse of :func:`compress_24`)."""
    if values.shape != positions.shape or values.ndim != 2 or values.shape[1] % 2:
        raise ValueError("values and positions must be 2-D tensors of the same shape (out, in/2)")
    if positions.dtype != torch.uint8 or bool((positions > 3).any()):
        raise ValueError("positions must be uint8 values in 0..3")
    out, half = values.shape
    dense = torch.zeros(out, half // 2, 4, dtype=values.dtype, device=values.device)
    dense.scatter_(2, positions.view(out, -1, 2).long(), values.view(out, -1, 2))
    return dense.view(out, 2 * half)


def compressed_linear(x: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x W^T computed from the compressed format: each output sums its kept weights times the inputs they select."""
    out, half = values.shape
    columns = (torch.arange(half, device=values.device) // 2 * 4).expand(out, half) + positions.long()
    return torch.einsum("...oc,oc->...o", x[..., columns], values)


class SemiStructuredLinear(nn.Module):
    """A linear layer with a 2:4 weight, on the GPU's sparse kernels when available, else dense.

    Build it with :meth:`from_linear`. ``uses_kernel`` says which path it takes.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        check_24("weight", weight)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.uses_kernel = semi_structured_available(weight.device, weight.dtype)
        if self.uses_kernel:
            weight = torch.sparse.to_sparse_semi_structured(weight)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> SemiStructuredLinear:
        """The same layer with its (already 2:4) weight on the semi-structured path."""
        return cls(linear.weight.detach().clone(), linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_kernel and x.ndim > 2:
            return F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias).view(*x.shape[:-1], -1)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        path = "semi-structured 2:4 kernel" if self.uses_kernel else "dense masked fallback"
        return f"in_features={self.in_features}, out_features={self.out_features}, {path}"
