"""2:4 pruning: throughput of the prox, and time per layer of each pruner.

The vectorized prox is timed against one group at a time on the same random weights, at a
regularization weight where the answers mix two, three and four non-zeros; and, at every
strength from 1e-3 to 10, against the single-start coordinate descent that ProxSparse's
operator (EnumALM) and this book's first version ran: the best of the two largest entries
and coordinate sweeps from w = 0 on the three- and four-entry supports, until the whole
weight's change falls below 1e-8 or 100 sweeps. Each pruner is timed on one layer at the
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
from reprobook.sparse.prox import prox_objective
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


def single_start_prox(weight, lam, sweeps=100, stop=1e-8):
    """The single-start coordinate descent, for comparison (see the module's docstring)."""
    z, order = torch.sort(weight.reshape(-1, 4).abs(), dim=-1, descending=True)
    columns = z.T.contiguous()
    candidates = [columns.clone()]
    candidates[0][2:] = 0
    for support in (3, 4):
        w = list(torch.zeros_like(columns))
        for _ in range(sweeps):
            before = torch.stack(w)
            for k in reversed(range(support)):
                others = [w[j] for j in range(support) if j != k]
                products = sum(others[i] * others[j] for i in range(len(others)) for j in range(i + 1, len(others)))
                w[k] = torch.clamp(columns[k] - lam * products, min=0)
            if (torch.stack(w) - before).abs().sum() < stop:
                break
        candidates.append(torch.stack(w))
    stacked = torch.stack(candidates).transpose(1, 2)  # (3, groups, 4)
    best = stacked[prox_objective(stacked, z, lam).argmin(0), torch.arange(z.shape[0])]
    signed = torch.empty_like(best).scatter_(-1, order, best) * torch.sign(weight.reshape(-1, 4))
    return signed.view_as(weight)


def prox_by_strength(groups, strengths=(1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0), repeats=5):
    """Groups per second of ``prox_24`` and of the single-start descent, float64, one thread."""
    weight = torch.randn(groups // 256, 1024, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = weight.view(-1, 4)
    lines = []
    for lam in strengths:
        ours = min(_seconds(lambda: prox_24(weight, lam)) for _ in range(repeats))
        single = min(_seconds(lambda: single_start_prox(weight, lam)) for _ in range(repeats))
        gap = prox_objective(single_start_prox(weight, lam).view(-1, 4), z, lam) - prox_objective(
            prox_24(weight, lam).view(-1, 4), z, lam
        )
        lines.append(
            f"prox at lam {lam:6g}: {groups / ours:12,.0f} groups/s, single-start descent "
            f"{groups / single:12,.0f} groups/s; ratio {single / ours:6.2f}x; the single start's "
            f"objective worse by up to {gap.max().item():.1e} (better by at most {abs(min(gap.min().item(), 0.0)):.0e})"
        )
    return lines


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
    yield from prox_by_strength(4096 if quick else 32768, repeats=1 if quick else 5)
    lines, iterations = lab_layer_times(LAB_SHAPES[:1] if quick else LAB_SHAPES)
    yield from lines
    shapes = [(256, 512)] if quick else LLAMA_SHAPES
    yield from large_layer_times(shapes, iterations, timed_steps=1 if quick else 2)
