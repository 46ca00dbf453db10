"""2:4 pruning: throughput of the vectorized prox against one group at a time, and time per layer of each pruner.

The prox is timed on the same random weights both ways, at a regularization weight where
the answers mix two, three and four non-zeros. Each pruner is timed on one layer at the
laboratory models' shapes and at Llama-7B's (4096 x 4096, 11008 x 4096, 4096 x 11008).
The prox method runs in full at the laboratory shapes; at the 7B shapes the benchmark
times a few of its iterations and multiplies by the number of iterations the same
schedule took on a laboratory layer (marked "estimated").
"""

from __future__ import annotations

import time

import numpy as np
import torch

from reprobook.sparse import ProxPath, make_pruner, prox_24, prox_group, prox_prune, wanda_mask
from reprobook.sparse.layerwise import largest_eigenvalue, prox_gradient_step
from reprobook.sparse.toy import ar1_covariance

LAB_SHAPES = [(128, 128), (384, 128), (128, 384), (256, 256), (704, 256), (256, 704)]
LLAMA_SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]


def _seconds(function, repeats=1):
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def prox_throughput(groups, looped_groups, lam=10.0):
    weight = torch.randn(groups // 64, 256, generator=torch.Generator().manual_seed(0)) * 0.05
    vectorized = _seconds(lambda: prox_24(weight, lam))
    subset = weight.view(-1, 4)[:looped_groups].tolist()
    looped = _seconds(lambda: [prox_group(group, lam) for group in subset])
    nonzeros = torch.bincount((prox_24(weight, lam).view(-1, 4) != 0).sum(-1), minlength=5).tolist()
    return (
        f"prox: vectorized {groups / vectorized:12,.0f} groups/s ({groups} groups), one group at a time "
        f"{looped_groups / looped:10,.0f} groups/s; ratio {groups / vectorized / (looped_groups / looped):6.1f}x; "
        f"answers with 2/3/4 non-zeros {nonzeros[2]}/{nonzeros[3]}/{nonzeros[4]}"
    )


def layer(rows, columns, rho=0.9, seed=0):
    """A random float32 weight and the toy layers' correlated H (the AR(1) covariance itself) of that shape."""
    rng = np.random.default_rng(seed)
    hessian = torch.from_numpy(ar1_covariance(columns, rho, rng)).float()
    weight = torch.from_numpy(rng.normal(size=(rows, columns)) * 0.02).float()
    return weight, hessian


def lab_layer_times(shapes):
    lines, iterations = [], []
    for rows, columns in shapes:
        weight, hessian = layer(rows, columns)
        wanda = _seconds(lambda: weight * wanda_mask(weight, hessian))
        sparsegpt = _seconds(lambda: make_pruner("sparsegpt")(weight, hessian))
        path = ProxPath()
        prox = _seconds(lambda: prox_prune(weight, hessian, path=path))
        iterations.append(path.iterations)
        lines.append(
            f"layer {rows:5d} x {columns:5d}: Wanda {wanda * 1e3:9.1f} ms  SparseGPT {sparsegpt:7.2f} s  "
            f"prox {prox:7.2f} s ({path.iterations} iterations)  prox/SparseGPT {prox / sparsegpt:6.1f}x  "
            f"prox/Wanda {prox / wanda:8.0f}x"
        )
    return lines, max(iterations)


def large_layer_times(shapes, iterations, timed_steps=2):
    lines = []
    for rows, columns in shapes:
        weight, hessian = layer(rows, columns)
        wanda = _seconds(lambda: weight * wanda_mask(weight, hessian))
        sparsegpt = _seconds(lambda: make_pruner("sparsegpt")(weight, hessian))
        eta = 1.0 / largest_eigenvalue(hessian)
        W = weight.clone()

        def step():
            nonlocal W
            W = prox_gradient_step(W, weight, hessian, eta, 100.0)

        per_step = _seconds(step, timed_steps)
        prox = per_step * iterations
        lines.append(
            f"layer {rows:5d} x {columns:5d}: Wanda {wanda * 1e3:9.1f} ms  SparseGPT {sparsegpt:7.2f} s  "
            f"prox {per_step:6.2f} s/iteration, estimated {prox:8.1f} s for {iterations} iterations  "
            f"prox/SparseGPT {prox / sparsegpt:6.1f}x (estimated)"
        )
    return lines


def main(quick: bool = False):
    torch.manual_seed(0)
    yield prox_throughput(4096 if quick else 262144, 512 if quick else 8192)
    lines, iterations = lab_layer_times(LAB_SHAPES[:1] if quick else LAB_SHAPES)
    yield from lines
    shapes = [(256, 512)] if quick else LLAMA_SHAPES
    yield from large_layer_times(shapes, iterations, timed_steps=1 if quick else 2)
