"""The list features of the DopeWolfe paper's Section 6.1, read from a local data folder.

The authors published two arrays of precomputed features (MIT licence), shape
(lists, K answers, d): Anthropic's helpfulness questions (2000, 2, 36) and Nectar's
(500, 4, 16). The book never ships them: :func:`load_features` reads
``<data folder>/dopewolfe/<name>_features.npy``, where the data folder is the
``data_dir`` argument, else ``$REPROBOOK_DATA``. It checks the file's sha256 and shape.
When the file is absent it falls back to synthetic features of the same shape (unit
vectors, as the real ones are) and says so in :attr:`Features.notice`: with them the
paper's curves are not reproduced, only the methods' comparison on similar data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reprobook.cache import file_sha256

DATA_ENVIRONMENT_VARIABLE = "REPROBOOK_DATA"


@dataclass(frozen=True)
class FeatureFile:
    """What the book expects of one published feature file."""

    filename: str
    shape: tuple[int, int, int]
    sha256: str


FEATURE_FILES = {
    "anthropic": FeatureFile(
        "anthropic_features.npy", (2000, 2, 36), "aafaad61dc416c970738c22e776b1bee9b0e10f9f2370a51593ebba5abe51d33"
    ),
    "nectar": FeatureFile(
        "nectar_features.npy", (500, 4, 16), "47e0c496ebaf3a8877ee2a2774c408e1210fe03ea89cbe5014b3655d2f1050d5"
    ),
}


@dataclass(frozen=True)
class Features:
    """Features of shape (lists, K, d), where they come from, and a sentence for the reader."""

    lists: np.ndarray
    name: str
    synthetic: bool
    notice: str


def data_folder(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data folder: ``data_dir`` if given, else ``$REPROBOOK_DATA``, else None."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    configured = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    return Path(configured).expanduser() if configured else None


def synthetic_features(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Standard normal vectors scaled to unit length, of the given (lists, K, d) shape."""
    vectors = np.random.default_rng(seed).standard_normal(shape)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def load_features(name: str, data_dir: str | os.PathLike | None = None) -> Features:
    """The published features ``name`` ('anthropic' or 'nectar'), checked, or a synthetic stand-in.

    A file that is present but whose shape or sha256 differs from the published one is an
    error, never silently replaced.
    """
    if name not in FEATURE_FILES:
        raise ValueError(f"name must be one of {sorted(FEATURE_FILES)}, got {name!r}")
    expected = FEATURE_FILES[name]
    folder = data_folder(data_dir)
    path = None if folder is None else folder / "dopewolfe" / expected.filename
    if path is None or not path.is_file():
        where = f"{path}" if path is not None else f"any data folder (set ${DATA_ENVIRONMENT_VARIABLE})"
        notice = (
            f"NOTICE: the published {name} features were not found in {where}; "
            f"using synthetic unit-norm features of the same shape {expected.shape}. "
            "The paper's numbers cannot be compared with these runs."
        )
        return Features(synthetic_features(expected.shape), name, True, notice)
    lists = np.load(path, allow_pickle=False)
    if lists.shape != expected.shape or lists.dtype != np.float64:
        raise ValueError(f"{path} holds {lists.dtype} {lists.shape}, expected float64 {expected.shape}")
    digest = file_sha256(path)
    if digest != expected.sha256:
        raise ValueError(f"{path} has sha256 {digest}, expected {expected.sha256} (the published file)")
    notice = (
        f"The published {name} features: {lists.shape[0]} lists of K = {lists.shape[1]} items, d = {lists.shape[2]}."
    )
    return Features(lists, name, False, notice)
