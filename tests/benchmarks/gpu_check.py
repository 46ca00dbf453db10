"""The library's GPU paths in one command: each checked against the CPU, then timed.

    make gpu-check               # a CUDA GPU of compute capability >= 8.0; about 5 minutes on an H100
    make gpu-check DEVICE=cpu    # every step at small shapes on the CPU: checks the script itself

It needs nothing but the project's install (``make venv TORCH=...`` with a CUDA build of
torch). It prints a table and writes every number to ``gpu-check.json`` (``--out``).

Correctness, each on the device against the same computation on the CPU:

- the test suite's two CUDA tests (Krylov CRN on CUDA, the semi-structured kernel);
- ``prox_24`` on 10^6 groups of four N(0, 1) weights in float64, at three strengths: the same
  objective to 1e-6 relative;
- ProxSparse, 20 steps on ``lab-tiny``: the same 2:4 masks (groups whose top two differ are
  counted; float32 with TF32 off);
- Krylov CRN, 20 iterations on a logistic regression in float64: the same objective at every
  iteration to 1e-8 relative.

Speed, as ratios measured in this run:

- the 2:4 semi-structured matmul against the dense one at Llama-7B shapes (4096 x 4096,
  11008 x 4096, 4096 x 11008), for 1, 16 and 2048 tokens, in float16 and bfloat16;
- ``prox_24``: groups per second at each strength;
- one ProxSparse step of a 7B layer (11008 x 4096): forward, backward, AdamW, prox;
- one Hessian-vector product at d = 10^6 (forward-over-reverse), against one gradient.

Without a CUDA device (and without ``--device cpu``) it stops at once with a message.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reprobook.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
CUDA_TESTS = [
    "tests/test_secondorder_methods.py::test_krylov_crn_on_cuda_matches_cpu",
    "tests/test_sparse_pruning.py::test_the_semi_structured_kernel_matches_the_dense_product_on_a_gpu",
]
STRENGTHS = [0.01, 0.1, 1.0]


@dataclass(frozen=True)
class Sizes:
    """The problem sizes of a run: the full ones on a GPU, small ones for the CPU dry run."""

    prox_groups: int
    proxsparse_steps: int
    krylov_samples: int
    krylov_dimension: int
    shapes: tuple[tuple[int, int], ...]
    tokens: tuple[int, ...]
    dtypes: tuple[torch.dtype, ...]
    step_shape: tuple[int, int]
    step_tokens: int
    hvp_dimension: int


FULL = Sizes(
    prox_groups=10**6,
    proxsparse_steps=20,
    krylov_samples=20_000,
    krylov_dimension=2_000,
    shapes=((4096, 4096), (11008, 4096), (4096, 11008)),
    tokens=(1, 16, 2048),
    dtypes=(torch.float16, torch.bfloat16),
    step_shape=(11008, 4096),
    step_tokens=2048,
    hvp_dimension=10**6,
)
SMALL = Sizes(
    prox_groups=10**4,
    proxsparse_steps=2,
    krylov_samples=400,
    krylov_dimension=50,
    shapes=((64, 128),),
    tokens=(1, 16),
    dtypes=(torch.float32,),
    step_shape=(64, 128),
    step_tokens=16,
    hvp_dimension=10**4,
)


def synchronized(device: torch.device) -> float:
    """The clock, after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(function) -> float:
    """Median seconds per call, by torch.utils.benchmark (which synchronizes CUDA)."""
    from torch.utils.benchmark import Timer

    return Timer(stmt="function()", globals={"function": function}).blocked_autorange(min_run_time=0.5).median


def cuda_tests(device: torch.device, sizes: Sizes) -> dict:
    """The suite's CUDA tests; on the CPU they skip, which the dry run accepts."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *CUDA_TESTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    summary = next((line for line in reversed(result.stdout.splitlines()) if " in " in line), result.stdout[-200:])
    passed = result.returncode == 0 and ("2 passed" in summary if device.type == "cuda" else True)
    return {"summary": summary.strip("= "), "ok": passed}


def prox_agreement(device: torch.device, sizes: Sizes) -> dict:
    """prox_24 on the device against the CPU: the objectives of the two answers, relative difference."""
    from reprobook.sparse.prox import prox_24, prox_objective

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(sizes.prox_groups, 4, generator=generator, dtype=torch.float64)
    rows = []
    for lam in STRENGTHS:
        on_cpu = prox_24(weight, lam)
        on_device = prox_24(weight.to(device), lam).cpu()
        cpu_value = float(prox_objective(on_cpu, weight, lam).sum())
        device_value = float(prox_objective(on_device, weight, lam).sum())
        rows.append({"lam": lam, "relative_difference": abs(device_value - cpu_value) / abs(cpu_value)})
    return {"groups": sizes.prox_groups, "rows": rows, "ok": all(r["relative_difference"] <= 1e-6 for r in rows)}


def proxsparse_agreement(device: torch.device, sizes: Sizes) -> dict:
    """ProxSparse on lab-tiny for a few steps on the device and on the CPU: do the learned masks agree?"""
    from reprobook.lm.corpus import load_corpus
    from reprobook.lm.lab import encode, load_causal_lm
    from reprobook.sparse.proxsparse import proxsparse

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    masks = {}
    for key, where in (("cpu", torch.device("cpu")), ("device", device)):
        lab = load_causal_lm("lab-tiny", progress=False)
        tokens = encode(lab.tokenizer, load_corpus(), "validation")
        calibration = tokens[: sizes.proxsparse_steps * 64].view(sizes.proxsparse_steps, 64)
        model = lab.model.to(where)
        torch.manual_seed(0)
        result = proxsparse(
            model, calibration, 0.1, learning_rate=1e-4, log_every=sizes.proxsparse_steps, progress=False
        )
        masks[key] = result.masks
    groups = differing = 0
    for name, mask in masks["cpu"].items():
        other = masks["device"][name]
        differing += int((mask != other).view(mask.shape[0], -1, 4).any(-1).sum())
        groups += mask.numel() // 4
    return {"steps": sizes.proxsparse_steps, "groups": groups, "differing_groups": differing, "ok": differing == 0}


def logistic_oracle(device: torch.device, sizes: Sizes):
    """A regularized logistic regression on a fixed random design, as a TorchOracle in float64."""
    from reprobook.secondorder import TorchOracle

    generator = torch.Generator().manual_seed(0)
    design = torch.randn(sizes.krylov_samples, sizes.krylov_dimension, generator=generator, dtype=torch.float64)
    labels = torch.sign(design @ torch.randn(sizes.krylov_dimension, generator=generator, dtype=torch.float64))
    design, labels = design.to(device), labels.to(device)

    def loss(x):
        return F.softplus(-labels * (design @ x)).mean() + 1e-4 * (x @ x)

    return TorchOracle(loss, sizes.krylov_dimension, device=device)


def krylov_agreement(device: torch.device, sizes: Sizes) -> dict:
    """Krylov CRN for 20 iterations on the device and on the CPU: the objective at every iteration."""
    from reprobook.secondorder import krylov_crn

    x0 = np.zeros(sizes.krylov_dimension)
    cpu, other = (
        krylov_crn(logistic_oracle(where, sizes), x0, m=10, iterations=20, tolerance=0.0).objective
        for where in (torch.device("cpu"), device)
    )
    worst = float(max(abs(a - b) / abs(a) for a, b in zip(cpu, other, strict=True)))
    return {"iterations": len(cpu) - 1, "worst_relative_difference": worst, "ok": worst <= 1e-8}


def matmul_row(weight: torch.Tensor, x: torch.Tensor) -> dict:
    """One 2:4 product against the dense one: their agreement and their times."""
    from reprobook.sparse import SemiStructuredLinear

    layer = SemiStructuredLinear(weight)
    row = {"kernel": layer.uses_kernel}
    try:
        dense, sparse = F.linear(x, weight).float(), layer(x).float()
        row["relative_error"] = float((dense - sparse).abs().max() / dense.abs().max())
        row["dense_ms"] = timed(lambda: F.linear(x, weight)) * 1e3
        row["sparse_ms"] = timed(lambda: layer(x)) * 1e3
        row["speedup"] = row["dense_ms"] / row["sparse_ms"]
    except (RuntimeError, ValueError) as error:  # a kernel that refuses a shape: recorded, the others go on
        row["error"] = f"{type(error).__name__}: {error}"[:300]
    return row


def matmul_speed(device: torch.device, sizes: Sizes) -> dict:
    """The 2:4 semi-structured product against the dense one, checked to agree, at each shape, batch and dtype."""
    from reprobook.sparse import top2_mask

    generator = torch.Generator(device=device).manual_seed(0)
    rows = []
    for dtype in sizes.dtypes:
        for out_features, in_features in sizes.shapes:
            weight = torch.randn(out_features, in_features, generator=generator, device=device)
            weight = (weight * top2_mask(weight.abs())).to(dtype)
            for tokens in sizes.tokens:
                x = torch.randn(tokens, in_features, generator=generator, device=device).to(dtype)
                shape = {"dtype": str(dtype).removeprefix("torch."), "out": out_features, "in": in_features}
                rows.append({**shape, "tokens": tokens, **matmul_row(weight, x)})
    ok = all(row.get("relative_error", math.inf) < 2e-2 for row in rows)  # the kernel computes the product
    return {"rows": rows, "ok": ok}


def prox_speed(device: torch.device, sizes: Sizes) -> dict:
    """Groups per second of prox_24 in float32 at each strength."""
    from reprobook.sparse.prox import prox_24

    weight = torch.randn(sizes.prox_groups, 4, generator=torch.Generator().manual_seed(1)).to(device)
    rows = []
    for lam in STRENGTHS:
        prox_24(weight, lam)  # warm-up
        start = synchronized(device)
        prox_24(weight, lam)
        rows.append({"lam": lam, "groups_per_second": sizes.prox_groups / (synchronized(device) - start)})
    return {"groups": sizes.prox_groups, "rows": rows, "ok": True}


def proxsparse_step_speed(device: torch.device, sizes: Sizes) -> dict:
    """One ProxSparse step of one 7B layer: forward and backward of its product, AdamW, then the prox."""
    from reprobook.sparse.prox import prox_24

    out_features, in_features = sizes.step_shape
    layer = torch.nn.Linear(in_features, out_features, bias=False, device=device)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-4, weight_decay=0.0)
    x = torch.randn(sizes.step_tokens, in_features, device=device)
    seconds = {}

    def step():
        start = synchronized(device)
        loss = layer(x).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        middle = synchronized(device)
        with torch.no_grad():
            layer.weight.copy_(prox_24(layer.weight, 0.1))
        end = synchronized(device)
        seconds["training"], seconds["prox"] = middle - start, end - middle

    step()  # warm-up
    step()
    return {"shape": list(sizes.step_shape), "tokens": sizes.step_tokens, **{f"{k}_s": v for k, v in seconds.items()}}


def hvp_speed(device: torch.device, sizes: Sizes) -> dict:
    """One Hessian-vector product at dimension d against one gradient, float64."""
    from reprobook.secondorder import TorchOracle

    d = sizes.hvp_dimension
    scales = torch.linspace(0.5, 2.0, d, dtype=torch.float64, device=device)
    oracle = TorchOracle(lambda x: (scales * x).pow(4).sum() + torch.logsumexp(x, 0), d, device=device)
    x = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).to(device)
    v = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).to(device)
    gradient_seconds = timed(lambda: oracle.gradient(x))
    hvp_seconds = timed(lambda: oracle.hvp(x, v))
    return {"d": d, "gradient_ms": gradient_seconds * 1e3, "hvp_ms": hvp_seconds * 1e3, "ok": True}


STEPS = {
    "cuda tests": cuda_tests,
    "prox_24, device against CPU": prox_agreement,
    "ProxSparse on lab-tiny, device against CPU": proxsparse_agreement,
    "Krylov CRN, device against CPU": krylov_agreement,
    "2:4 matmul against dense": matmul_speed,
    "prox_24 speed": prox_speed,
    "one ProxSparse step, 7B layer": proxsparse_step_speed,
    "Hessian-vector product": hvp_speed,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run at small shapes)")
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="where the JSON report goes")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device is available (torch.cuda.is_available() is False). Run it on a GPU "
            "machine with a CUDA build of torch (make venv TORCH=...), or dry-run it: make gpu-check DEVICE=cpu",
            file=sys.stderr,
        )
        return 2
    sizes = SMALL if device.type == "cpu" else FULL
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run, small shapes)"
    print(f"device: {name}; torch {torch.__version__}")
    report = {"device": name, "torch": torch.__version__, "steps": {}}
    for title, step in STEPS.items():
        start = time.perf_counter()
        try:
            result = step(device, sizes)
        except Exception as error:  # one failing step is recorded; the others still run
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
        result["seconds"] = time.perf_counter() - start
        report["steps"][title] = result
        shown = {k: v for k, v in result.items() if k not in ("rows", "seconds", "ok")}
        print(f"[{'ok' if result.get('ok', True) else 'FAILED'}] {title} ({result['seconds']:.1f} s): {shown}")
        for row in result.get("rows", []):
            print("    " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(step.get("ok", True) for step in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
