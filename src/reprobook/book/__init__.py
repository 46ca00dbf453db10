"""The book's machinery: chapters, claims ledger, profiles, runner, scoreboard, CLI."""

from reprobook.book.chapters import Chapter, find_book_root, list_chapters
from reprobook.book.claims import ClaimsLedger, load_claims
from reprobook.book.profiles import load_profiles
from reprobook.book.session import start_notebook

__all__ = [
    "Chapter",
    "ClaimsLedger",
    "find_book_root",
    "list_chapters",
    "load_claims",
    "load_profiles",
    "start_notebook",
]
