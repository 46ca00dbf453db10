"""The book's machinery: chapters, claims ledger, profiles, runner, scoreboard, CLI."""

import lazy_loader

# Each name is imported from its module on first use, so that importing one tool does not
# import the libraries of all the others.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "chapters": ["Chapter", "find_book_root", "list_chapters"],
        "claims": ["ClaimsLedger", "load_claims"],
        "profiles": ["load_profiles"],
        "session": ["start_notebook"],
    },
)
