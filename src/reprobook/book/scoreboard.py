"""The scoreboard: every chapter's claims, the paper's value, this book's value, the verdict.

A claim judged on a sweep (:mod:`reprobook.book.evidence`) also shows the median and 95 %
interval of its value over the sweep's runs and how many runs are on the verdict's side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from reprobook.book.chapters import Chapter, find_book_root, list_chapters
from reprobook.book.claims import INCONCLUSIVE, NOT_RUN, VERDICTS, Claim, load_claims, parse_ledger
from reprobook.book.notebooks import printed_text

if TYPE_CHECKING:
    from reprobook.book.evidence import Evidence

SCOREBOARD_PAGE = Path("book") / "scoreboard.md"


@dataclass(frozen=True)
class ScoreRow:
    """One claim as the scoreboard shows it."""

    chapter: str
    claim: Claim
    measured: str
    evidence: Evidence | None = None

    @property
    def paper(self) -> str:
        return self.claim.paper_text()

    def sweep_text(self) -> str:
        """``0.738 [0.70, 0.80], 9 of 10 runs (sweep `seeds`)``, or ``one run`` for a claim without a sweep."""
        if self.evidence is None:
            return "one run"
        return f"{self.evidence.interval_text()}, {self.evidence.runs_text()} (sweep `{self.claim.sweep}`)"


def measured_values(chapter: Chapter, notebook: str) -> dict[str, str]:
    """Measured values printed by the ledger of a committed notebook (empty if never run)."""
    path = chapter.notebook(notebook)
    if not path.is_file():
        return {}
    return parse_ledger(printed_text(nbformat.read(path, as_version=4)))


def chapter_rows(chapter: Chapter) -> list[ScoreRow]:
    """The scoreboard rows of one chapter, in the order of its claims.yml."""
    claims = load_claims(chapter.claims_file)
    notebooks = {c.notebook for c in claims.claims}
    from reprobook.book.evidence import chapter_evidence

    values = {name: measured_values(chapter, name) for name in notebooks}
    evidence = chapter_evidence(chapter)
    return [
        ScoreRow(chapter.slug, claim, values[claim.notebook].get(claim.id, "not run"), evidence.get(claim.id))
        for claim in claims.claims
    ]


def one_line(text: str) -> str:
    """Text with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(text).split())


def _cell(text: str) -> str:
    return one_line(text).replace("|", "\\|")


def _value(text: str) -> str:
    """A value whose bound sign stays with its number: ``< 1e-04`` does not break across lines."""
    return _cell(text).replace("< ", "<&nbsp;").replace("> ", ">&nbsp;")


def _table(rows: list[ScoreRow]) -> list[str]:
    lines = [
        "| chapter | claim | paper | this book (one run) | over the sweep: median [95 % interval] | test | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        claim = row.claim
        lines.append(
            f"| [{row.chapter}](../chapters/{row.chapter}/index.md) | **{claim.id}**: {_cell(claim.statement)} "
            f"| {_value(row.paper)} | {_value(row.measured)} | {_value(row.sweep_text())} | {_cell(claim.test_text())} "
            f"| {claim.verdict} |"
        )
    return lines


def _summary(rows: list[ScoreRow]) -> list[str]:
    """One line per chapter: how many of its claims earned each verdict."""
    columns = [*VERDICTS, INCONCLUSIVE, NOT_RUN]
    lines = [
        "| chapter | " + " | ".join(columns) + " | sanity checks passed |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for chapter in dict.fromkeys(row.chapter for row in rows):
        claims = [r.claim for r in rows if r.chapter == chapter]
        reproduction = [c for c in claims if c.kind == "reproduction"]
        checks = [c for c in claims if c.kind == "sanity"]
        counts = [str(sum(c.verdict == verdict for c in reproduction)) for verdict in columns]
        passed = sum(c.verdict == "reproduced" for c in checks)
        lines.append(
            f"| [{chapter}](../chapters/{chapter}/index.md) | " + " | ".join(counts) + f" | {passed} of {len(checks)} |"
        )
    return lines


def render_scoreboard(root: Path | None = None) -> str:
    """The Markdown of the scoreboard page: a summary per chapter, the reproduction claims and their score,
    the sanity checks, then the claims scored apart (inconclusive, awaiting the paper profile)."""
    from reprobook.book.evidence import MAJORITY

    share = f"{MAJORITY * 100:.0f} %"
    root = root or find_book_root()
    rows = [row for chapter in list_chapters(root) for row in chapter_rows(chapter)]
    apart = (NOT_RUN, INCONCLUSIVE)
    claims = [row for row in rows if row.claim.kind == "reproduction" and row.claim.verdict not in apart]
    checks = [row for row in rows if row.claim.kind == "sanity"]
    inconclusive = [row for row in rows if row.claim.verdict == INCONCLUSIVE]
    pending = [row for row in rows if row.claim.verdict == NOT_RUN]
    counts = {verdict: sum(r.claim.verdict == verdict for r in claims) for verdict in VERDICTS}
    failed_checks = sum(r.claim.verdict != "reproduced" for r in checks)
    return (
        "\n".join(
            [
                "# Scoreboard",
                "",
                "Every claim the book checks, with the paper's value, the value this book measured at the",
                "claim's profile, and the verdict. This page is generated by `reprobook scoreboard` from each",
                "chapter's `claims.yml`, the outputs of its committed notebooks and the runs of its committed",
                "sweeps; a test keeps it current.",
                "",
                "## How a verdict is reached",
                "",
                "A claim with a sweep is judged on many runs of its notebook at the claim's profile (other",
                "seeds, committed under `chapters/<chapter>/sweeps/`), by one rule:",
                "",
                f"- **reproduced** when the claim's test passes in at least {share} of the runs *and* the 95 %",
                "  interval of the median (a percentile bootstrap over the runs) lies on the test's side of",
                "  its threshold;",
                "- **reproduced-in-direction** by the same rule on the claim's weaker direction test;",
                f"- **not-reproduced** when the weakest test fails in at least {share} of the runs and the",
                "  interval lies on its failing side;",
                "- **inconclusive** otherwise: at this scale the runs cannot separate the outcomes. Its reason",
                "  says what run would decide it. Inconclusive claims are scored apart, like those not run.",
                "",
                "A claim without a sweep (`one run` below) is judged on the notebook's single run.",
                "",
                "## Per chapter",
                "",
                "Reproduction claims by verdict, and the sanity checks that pass.",
                "",
                *_summary(rows),
                "",
                "## Reproduction claims",
                "",
                "Claims that could have failed: each chapter's `claims.yml` says what result would have made",
                "each one `not-reproduced`. Only these count in the score.",
                "",
                f"**{len(claims)} claims:** {counts['reproduced']} reproduced, "
                f"{counts['reproduced-in-direction']} reproduced in direction, "
                f"{counts['not-reproduced']} not reproduced.",
                "",
                *_table(claims),
                "",
                "## Sanity checks",
                "",
                "What holds by construction or by an identity: the checks guard the code and are judged the",
                "same way, but a pass says nothing about the paper.",
                "",
                f"**{len(checks)} checks:** {len(checks) - failed_checks} pass, {failed_checks} fail.",
                "",
                *_table(checks),
                "",
                "## Inconclusive at this scale",
                "",
                "Claims whose runs cannot separate the outcomes; each chapter says what run would decide them.",
                "",
                f"**{len(inconclusive)} claims** inconclusive.",
                "",
                *_table(inconclusive),
                "",
                "## Awaiting the paper profile",
                "",
                "Published numbers at a scale this book's machines cannot run (7B models, GPUs): each is",
                "judged only when its notebook runs at the `paper` profile. At the `book` profile the",
                "notebook prints the same metric on the laboratory model, unjudged, shown here.",
                "",
                f"**{len(pending)} claims** not run.",
                "",
                *_table(pending),
            ]
        )
        + "\n"
    )
