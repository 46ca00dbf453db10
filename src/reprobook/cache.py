"""Where the book keeps what it builds: corpora, tokenizers, trained models.

The cache folder is ``$REPROBOOK_CACHE`` when set, else ``reprobook`` inside the
user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``). Entries are keyed by
a hash of everything that determines their content and written atomically.

Several processes (the test suite's workers, two notebooks run at once) may ask for
the same entry. :func:`build_once` builds it in one of them while the others wait on
a file lock, then read the finished entry. The lock is an ``flock`` on a file beside
the entry, released by the operating system when its holder exits, so a killed
builder blocks nobody; what it left half done is never read, because entries appear
only by an atomic rename and are checked before use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

T = TypeVar("T")

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


def build_once(entry: str | os.PathLike, read: Callable[[], T | None], build: Callable[[], None]) -> T:
    """The cache entry at ``entry``, built by exactly one of the processes that ask for it.

    ``read()`` returns the entry's content when the entry is complete and intact, else
    None; ``build()`` writes the entry (atomically). The first ``read`` needs no lock; on a
    miss, the process takes the entry's lock, reads again (another process may have built
    it meanwhile) and builds only if the entry is still missing.
    """
    content = read()
    if content is not None:
        return content
    entry = Path(entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(entry.with_name(entry.name + ".lock")):
        content = read()
        if content is None:
            build()
            content = read()
    if content is None:
        raise OSError(f"the cache entry {entry} was built but cannot be read back")
    return content
