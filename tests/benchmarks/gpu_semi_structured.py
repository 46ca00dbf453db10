"""2:4 semi-structured matmul against dense on a GPU, at Llama-7B layer shapes and several batch sizes.

One prepared command for a machine with a CUDA GPU of compute capability 8.0 or later:

    python tests/benchmarks/gpu_semi_structured.py --out results.json

For every layer shape (out x in) and number of tokens it builds a random 2:4 weight,
multiplies through PyTorch's semi-structured kernels (``SemiStructuredLinear``) and
densely, checks that the results agree, and times both with
``torch.utils.benchmark``. It also prunes one layer on the GPU with each pruner and
times it. It prints a table and writes the numbers as JSON. ``--dry-run`` runs the same
code at tiny shapes on the CPU fallback, to check the script itself anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reprobook.atomic import atomic_write_text
from reprobook.sparse import SemiStructuredLinear, make_pruner, semi_structured_available, top2_mask

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]
TOKENS = [1, 16, 128, 1024, 4096, 16384]


def timed(function) -> float:
    """Median seconds per call measured by torch.utils.benchmark (synchronizes CUDA)."""
    from torch.utils.benchmark import Timer

    return Timer(stmt="function()", globals={"function": function}).blocked_autorange(min_run_time=0.5).median


def matmul_row(out_features, in_features, tokens, device, dtype, generator):
    weight = torch.randn(out_features, in_features, generator=generator, device=device, dtype=torch.float32)
    weight = (weight * top2_mask(weight.abs())).to(dtype)
    x = torch.randn(tokens, in_features, generator=generator, device=device, dtype=torch.float32).to(dtype)
    layer = SemiStructuredLinear(weight)
    dense, sparse = F.linear(x, weight), layer(x)
    error = float((dense.float() - sparse.float()).abs().max() / dense.float().abs().max())
    dense_seconds = timed(lambda: F.linear(x, weight))
    sparse_seconds = timed(lambda: layer(x))
    return {
        "out": out_features,
        "in": in_features,
        "tokens": tokens,
        "kernel": layer.uses_kernel,
        "relative_error": error,
        "agree": error < 2e-2,
        "dense_ms": dense_seconds * 1e3,
        "sparse_ms": sparse_seconds * 1e3,
        "speedup": dense_seconds / sparse_seconds,
    }


def pruner_row(out_features, in_features, device, generator):
    weight = torch.randn(out_features, in_features, generator=generator, device=device, dtype=torch.float64) * 0.02
    inputs = torch.randn(4 * in_features, in_features, generator=generator, device=device, dtype=torch.float64)
    inputs = inputs + 0.9 * torch.roll(inputs, 1, dims=1)  # neighbouring features correlated
    hessian = inputs.T @ inputs / inputs.shape[0]
    row = {"out": out_features, "in": in_features}
    for method in ("wanda", "sparsegpt", "prox"):
        pruner = make_pruner(method, 100 if method == "prox" else 0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        pruner(weight, hessian)
        if device.type == "cuda":
            torch.cuda.synchronize()
        row[f"{method}_s"] = time.perf_counter() - start
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU fallback")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.dry_run:
        device, shapes, tokens, prune_shapes = torch.device("cpu"), [(64, 128)], [1, 16], [(64, 128)]
        dtype = torch.float32
    else:
        device, shapes, tokens, prune_shapes = torch.device("cuda"), SHAPES, TOKENS, [(4096, 4096)]
        if not semi_structured_available(device, dtype):
            print("no CUDA GPU of compute capability >= 8.0: nothing to measure (use --dry-run to check the script)")
            return 2
    generator = torch.Generator(device=device).manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    print(f"device: {name}; torch {torch.__version__}; dtype {str(dtype).removeprefix('torch.')}")
    matmuls = []
    print(
        f"{'out':>6} {'in':>6} {'tokens':>6} {'kernel':>6} {'rel. error':>10} {'dense ms':>9} {'2:4 ms':>9} "
        f"{'speedup':>7}"
    )
    for out_features, in_features in shapes:
        for count in tokens:
            try:
                row = matmul_row(out_features, in_features, count, device, dtype, generator)
            except (RuntimeError, ValueError) as error:  # a kernel that refuses a shape: record it, go on
                matmuls.append(
                    {
                        "out": out_features,
                        "in": in_features,
                        "tokens": count,
                        "agree": False,
                        "error": f"{type(error).__name__}: {error}",
                    }
                )
                print(f"{out_features:6d} {in_features:6d} {count:6d} failed: {matmuls[-1]['error'][:200]}")
                continue
            matmuls.append(row)
            print(
                f"{row['out']:6d} {row['in']:6d} {row['tokens']:6d} {str(row['kernel']):>6} "
                f"{row['relative_error']:10.1e} {row['dense_ms']:9.3f} {row['sparse_ms']:9.3f} "
                f"{row['speedup']:7.2f}"
            )
    pruners = [pruner_row(o, i, device, generator) for o, i in prune_shapes]
    for row in pruners:
        print(
            f"pruning one {row['out']} x {row['in']} layer: Wanda {row['wanda_s']:.3f} s, "
            f"SparseGPT {row['sparsegpt_s']:.3f} s, prox {row['prox_s']:.3f} s"
        )
    if args.out:
        atomic_write_text(
            args.out,
            json.dumps(
                {
                    "device": name,
                    "torch": torch.__version__,
                    "dtype": str(dtype),
                    "matmul": matmuls,
                    "pruning": pruners,
                },
                indent=1,
            ),
        )
    return 0 if all(row["agree"] for row in matmuls) else 1


if __name__ == "__main__":
    sys.exit(main())
