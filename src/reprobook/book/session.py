"""The setup cell of every notebook: validate parameters, fix seeds and threads."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from reprobook.book.profiles import ParameterError, load_profiles
from reprobook.kernels import use_reproducible_blas


def seed_everything(seed: int, threads: int = 1) -> None:
    """Seed Python, NumPy and, once imported, PyTorch, and fix the number of compute threads.

    A fixed thread count makes floating-point reductions, and hence printed
    numbers, identical between runs on one machine. A notebook imports its libraries
    before its setup cell calls this, so PyTorch is seeded wherever a notebook uses it,
    and a notebook that computes with NumPy alone does not pay a second or two to
    import PyTorch only to seed it.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    random.seed(seed)
    np.random.seed(seed)
    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.set_num_threads(threads)


def start_notebook(
    notebook: str, namespace: dict[str, Any], threads: int = 1, chapter_folder: str | Path = "."
) -> SimpleNamespace:
    """Validate the notebook's parameters, pin MKL's code path, then seed everything.

    ``namespace`` is the notebook's ``globals()``: the values of the
    parameters cell (possibly overridden by papermill) are read from it, by the
    names declared in the chapter's ``profiles.yml``. Returns the validated
    parameters as attributes.
    """
    profiles = load_profiles(Path(chapter_folder) / "profiles.yml")
    if notebook not in profiles:
        raise ParameterError(f"notebook {notebook!r} is not declared in profiles.yml; expected one of {list(profiles)}")
    spec = profiles[notebook]
    missing = [name for name in spec.parameters if name not in namespace]
    if missing:
        raise ParameterError(f"the parameters cell of {spec.where} does not define {missing}")
    values = spec.validate({name: namespace[name] for name in spec.parameters})
    use_reproducible_blas()
    seed_everything(values["seed"], threads)
    print(f"{spec.where}: profile {values['profile']}, seed {values['seed']}, {threads} thread(s)")
    return SimpleNamespace(**values)
