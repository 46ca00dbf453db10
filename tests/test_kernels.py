"""The portable kernels are selected only before torch is imported, and then used."""

import subprocess
import sys

import pytest

from reprobook.kernels import use_portable_kernels


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
