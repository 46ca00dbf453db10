"""Where the book keeps what it builds: corpora, tokenizers, trained models.

The cache folder is ``$REPROBOOK_CACHE`` when set, else ``reprobook`` inside the
user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``). Entries are keyed by
a hash of everything that determines their content and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_ENVIRONMENT_VARIABLE = "REPROBOOK_CACHE"


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache`` if given, else ``$REPROBOOK_CACHE``, else the user's cache folder."""
    if cache is not None:
        return Path(cache).expanduser()
    configured = os.environ.get(CACHE_ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reprobook"


def content_key(*parts: Any) -> str:
    """A short, stable hash of JSON-serializable parts (dicts are hashed with sorted keys)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
