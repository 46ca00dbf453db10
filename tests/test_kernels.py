"""The portable kernels are selected only before torch is imported, and then used."""

import os
import platform
import subprocess
import sys

import pytest

from reprobook.kernels import use_portable_kernels

# The portability variants rerun this module: it checks which kernels run (tests/portability.py).
pytestmark = pytest.mark.portability


def test_too_late_once_torch_is_imported():
    import torch  # noqa: F401  (the test process has torch already)

    with pytest.raises(RuntimeError, match="before torch is imported"):
        use_portable_kernels()


def test_a_fresh_process_runs_the_scalar_kernels():
    code = (
        "from reprobook.kernels import use_portable_kernels, portable_kernels_in_use\n"
        "use_portable_kernels()\n"
        "print(portable_kernels_in_use())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="oneDNN's x86 instruction sets")
def test_onednn_runs_its_sse41_kernels_whatever_the_cpu_has():
    """oneDNN picks its kernels by the CPU (AVX-512 on one machine, AVX2 on another: other rounding
    of GELU and of convolutions); with the portable kernels, it must log only SSE4.1 kernels."""
    code = (
        "from reprobook.kernels import use_portable_kernels\n"
        "use_portable_kernels()\n"
        "import torch\n"
        "torch.manual_seed(0)\n"
        "with torch.no_grad():\n"
        "    torch.nn.functional.gelu(torch.randn(1, 4, 64))\n"
        "x = torch.randn(8, 4, 10, 10, requires_grad=True)\n"
        "torch.nn.Conv2d(4, 16, 3)(x).sum().backward()\n"
    )
    environment = {**os.environ, "ONEDNN_VERBOSE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    kernels = {line.split(",")[6] for line in result.stdout.splitlines() if ",primitive,exec,cpu," in line}
    assert any("sse41" in kernel for kernel in kernels), kernels
    assert not [kernel for kernel in kernels if "avx" in kernel], kernels


def product_digest(environment: dict[str, str], pin: bool) -> str:
    """The sha256 of a float32 matrix product computed in a fresh process (MKL on x86)."""
    code = (
        "import hashlib, torch\n"
        "from reprobook.kernels import use_reproducible_blas\n"
        "torch.set_num_threads(1)\n"
        + ("use_reproducible_blas()\n" if pin else "")
        + "g = torch.Generator().manual_seed(0)\n"
        "a, b = torch.randn(257, 511, generator=g), torch.randn(511, 263, generator=g)\n"
        "print(hashlib.sha256((a @ b).numpy().tobytes()).hexdigest())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"} | environment
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def test_notebooks_pin_mkl_to_its_avx2_branch_after_torch_is_imported():
    """On an Intel CPU with AVX-512, MKL's own choice gives other bits than on AVX2 and AMD machines."""
    assert product_digest({}, pin=True) == product_digest({"MKL_CBWR": "AVX2"}, pin=False)
    # a branch the environment chose (a portability variant's, the portable kernels') is kept
    assert product_digest({"MKL_CBWR": "COMPATIBLE"}, pin=True) == product_digest({"MKL_CBWR": "COMPATIBLE"}, pin=False)


def test_closed_loop_runs_use_no_backend_tuned_to_the_cpu_model():
    """After use_model_independent_backends, a batched convolution runs PyTorch's own kernel
    (a matrix product), not oneDNN's or NNPACK's, whose blocking follows the CPU's caches."""
    code = (
        "import torch\n"
        "from reprobook.cpu_backends import use_model_independent_backends\n"
        "x, w = torch.randn(32, 4, 10, 10), torch.randn(16, 4, 3, 3)\n"
        "def backend():\n"
        "    return torch._C._select_conv_backend(x, w, None, (1, 1), (0, 0), (1, 1), False, (0, 0), 1, None)\n"
        "before = backend()\n"
        "use_model_independent_backends()\n"
        "print(before, backend(), torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, mkldnn, nnpack = result.stdout.split()
    assert before != after, before  # the default picks a tuned backend for this batch
    assert after == "_ConvBackend.Slow2d"
    assert mkldnn == nnpack == "False"
