"""The claims ledger: what each paper claims, what this book measures, the verdict.

``chapters/<slug>/claims.yml`` lists a chapter's claims (DESIGN section 5); ``paper`` is
absent only for the appendix, whose claims are the book's own guarantees. A
notebook records one measured value per claim and prints the ledger as its last
cell; the cell fails when a verdict observed at the claim's profile differs from
the verdict recorded in the file, so a changed result cannot pass unnoticed.

Each entry has a ``kind``. A ``reproduction`` claim tests something the paper (or the
book) asserts that could have come out otherwise; only these count in the scoreboard's
score. A ``sanity`` check tests what holds by construction or by an identity (a method
that cannot return anything but a 2:4 weight, two methods that coincide on a
low-rank problem): it guards the code, is judged the same way, and is listed apart.
Every entry also states, in ``fails_if``, the result that would make it
``not-reproduced``. A test compares the measured value with a threshold (``<``, ``<=``,
``>``, ``>=``), or, with ``within``, bounds its distance to the paper's value: the test for
a number the book should match, such as one read from a figure.

**How a measured value is printed** (:func:`format_measured`, the one rule of the
book). nbval compares the printed ledger exactly, on CPUs whose BLAS and SIMD
kernels round differently, so a ledger prints only digits that every CPU agrees on:

* each claim declares ``digits``, the significant digits of its metric that are
  stable (round-off and kernel choice move only later digits); the value is printed
  rounded to them, in fixed notation between 1e-3 and 1e6, else in scientific notation;
* a claim whose metric can sit at round-off level (an error that is zero in exact
  arithmetic) declares ``roundoff``, a power of ten above any round-off its
  computation makes: a value below it prints as the bound ``< 1e-10``, never as noise;
* equal values print equal (``-0.0`` prints as ``0``).

A claim judged at the ``paper`` profile (a published number at a scale this book's
machines cannot run) records the verdict ``not-run`` until someone runs that profile;
the ledger then reports the observed verdict as differing, and its runner records it.

**Claims judged on a sweep.** A claim with ``sweep: NAME`` is judged on the committed runs
in ``chapters/<slug>/sweeps/NAME/`` (many seeds), by the rule of
:mod:`reprobook.book.evidence`, which can also answer ``inconclusive``: the runs cannot
separate the outcomes. Its recorded verdict is the rule's, kept current by a test; the
notebook's single run is the demonstration, and its ledger prints that run's verdict
next to the sweep's without enforcing it.

One case no printing rule can remove: a value within its CPU-to-CPU noise of a
rounding boundary (0.97049998 on one CPU, 0.97050001 on another, printed to three
digits) prints differently. ``make portability`` finds such a claim, and the fix is
fewer ``digits`` for it, never a looser test.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from reprobook.atomic import atomic_write_text
from reprobook.book.yaml_files import read_yaml

VERDICTS = ("reproduced", "reproduced-in-direction", "not-reproduced")
#: The verdict of a claim whose sweep cannot separate the outcomes at its scale (scored apart, like ``not-run``).
INCONCLUSIVE = "inconclusive"
#: The verdict of a claim judged only at the ``paper`` profile that nobody has run yet (no GPU, no 7B model).
NOT_RUN = "not-run"
KINDS = ("reproduction", "sanity")
#: When set in a notebook's kernel, :meth:`ClaimsLedger.report` also writes the ledger as JSON to this
#: path, for programs (``reprobook run``, ``reprobook sweep``) that must never parse the printed text.
LEDGER_FILE_VARIABLE = "REPROBOOK_LEDGER_FILE"
COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
#: ``within``: |measured - paper_value| <= threshold, for a value the book should match (a figure's reading).
WITHIN = "within"

_TEST_SCHEMA = {
    "type": "object",
    "required": ["compare", "threshold"],
    "additionalProperties": False,
    "properties": {
        "compare": {"enum": [*COMPARISONS, WITHIN]},
        "threshold": {"type": "number"},
    },
}

CLAIMS_SCHEMA = {
    "type": "object",
    "required": ["chapter", "claims"],
    "additionalProperties": False,
    "properties": {
        "chapter": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "paper": {
            "type": "object",
            "required": ["title", "authors", "arxiv", "year"],
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string"},
                "authors": {"type": "string"},
                "arxiv": {"type": "string", "pattern": r"^\d{4}\.\d{4,5}$"},
                "year": {"type": "integer"},
                "venue": {"type": "string"},
            },
        },
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "kind",
                    "notebook",
                    "statement",
                    "paper_value",
                    "paper_source",
                    "metric",
                    "profile",
                    "test",
                    "fails_if",
                    "verdict",
                    "reason",
                ],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                    "kind": {"enum": list(KINDS)},
                    "fails_if": {"type": "string", "minLength": 10},
                    "notebook": {"type": "string", "pattern": r"^\d\d_[a-z0-9_]+$"},
                    "statement": {"type": "string", "minLength": 10},
                    "paper_value": {"type": ["number", "null"]},
                    "paper_source": {"type": "string", "minLength": 10},
                    "metric": {"type": "string", "minLength": 10},
                    "profile": {"enum": ["smoke", "book", "paper", "long"]},
                    "test": _TEST_SCHEMA,
                    "direction": _TEST_SCHEMA,
                    "digits": {"type": "integer", "minimum": 1, "maximum": 6},
                    "roundoff": {"type": "number", "exclusiveMinimum": 0},
                    "verdict": {"enum": [*VERDICTS, INCONCLUSIVE, NOT_RUN]},
                    "sweep": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
                    "reason": {"type": "string", "minLength": 10},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Test:
    """A comparison ``measured <compare> threshold``, or ``|measured - reference| <= threshold`` (``within``)."""

    compare: str
    threshold: float

    def passes(self, value: float, reference: float | None = None) -> bool:
        if math.isnan(value):
            return False
        if self.compare == WITHIN:
            return abs(value - reference) <= self.threshold
        return COMPARISONS[self.compare](value, self.threshold)

    def describe(self, reference: float | None = None) -> str:
        if self.compare == WITHIN:
            return f"|measured - {reference:g}| <= {self.threshold:g}"
        return f"measured {self.compare} {self.threshold:g}"


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, with the test this book applies to it."""

    id: str
    kind: str
    notebook: str
    statement: str
    paper_value: float | None
    paper_source: str
    metric: str
    profile: str
    test: Test
    direction: Test | None
    digits: int
    roundoff: float | None
    fails_if: str
    verdict: str
    reason: str
    sweep: str | None = None

    def judge(self, value: float) -> str:
        """The verdict a measured value earns (DESIGN section 5)."""
        if self.test.passes(value, self.paper_value):
            return "reproduced"
        if self.direction is not None and self.direction.passes(value, self.paper_value):
            return "reproduced-in-direction"
        return "not-reproduced"

    def paper_text(self) -> str:
        if self.paper_value is None:
            return "not available"
        return format_measured(self.paper_value, self.digits)

    def measured_text(self, value: float) -> str:
        """How the ledger prints a value this book measured (see the module's docstring)."""
        return format_measured(value, self.digits, self.roundoff)

    def test_text(self) -> str:
        """The test, and the direction test when there is one, as the ledger prints them."""
        text = self.test.describe(self.paper_value)
        return text + (f"; in direction if {self.direction.describe(self.paper_value)}" if self.direction else "")


@dataclass(frozen=True)
class ChapterClaims:
    """The contents of one ``claims.yml``."""

    chapter: str
    paper: dict[str, Any] | None
    claims: tuple[Claim, ...]

    def for_notebook(self, notebook: str) -> list[Claim]:
        return [c for c in self.claims if c.notebook == notebook]


class ClaimsFileError(ValueError):
    """A claims.yml that does not follow the schema."""


def load_claims(path: str | Path) -> ChapterClaims:
    """Read and validate a chapter's ``claims.yml``."""
    path = Path(path).resolve()
    data = read_yaml(path, CLAIMS_SCHEMA, ClaimsFileError, "claims")
    claims = tuple(_claim_from_dict(item) for item in data["claims"])
    for claim in claims:
        if claim.roundoff is not None and not _is_power_of_ten(claim.roundoff):
            raise ClaimsFileError(
                f"{path}: claim {claim.id!r}: roundoff must be a power of ten such as 1e-10, got {claim.roundoff!r}"
            )
    for claim in claims:
        uses_within = WITHIN in (claim.test.compare, claim.direction.compare if claim.direction else None)
        if uses_within and claim.paper_value is None:
            raise ClaimsFileError(f"{path}: claim {claim.id!r}: compare {WITHIN!r} needs a paper_value to compare with")
    for claim in claims:
        if claim.verdict == NOT_RUN and claim.profile != "paper":
            raise ClaimsFileError(
                f"{path}: claim {claim.id!r}: verdict {NOT_RUN!r} is only for claims judged at the paper profile"
            )
    for claim in claims:
        if claim.verdict == INCONCLUSIVE and claim.sweep is None:
            raise ClaimsFileError(
                f"{path}: claim {claim.id!r}: verdict {INCONCLUSIVE!r} comes from a sweep; name it in 'sweep'"
            )
    ids = [c.id for c in claims]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ClaimsFileError(f"{path}: claim ids must be unique, repeated: {duplicated}")
    if data["chapter"] != path.parent.name:
        raise ClaimsFileError(f"{path}: chapter is {data['chapter']!r} but the folder is {path.parent.name!r}")
    return ChapterClaims(chapter=data["chapter"], paper=data.get("paper"), claims=claims)


def _claim_from_dict(item: dict[str, Any]) -> Claim:
    direction = item.get("direction")
    return Claim(
        id=item["id"],
        kind=item["kind"],
        notebook=item["notebook"],
        statement=item["statement"].strip(),
        paper_value=item["paper_value"],
        paper_source=item["paper_source"].strip(),
        metric=item["metric"].strip(),
        profile=item["profile"],
        test=Test(**item["test"]),
        direction=Test(**direction) if direction else None,
        digits=item.get("digits", 3),
        roundoff=item.get("roundoff"),
        fails_if=item["fails_if"].strip(),
        verdict=item["verdict"],
        reason=item["reason"].strip(),
        sweep=item.get("sweep"),
    )


def _is_power_of_ten(value: float) -> bool:
    return value > 0 and math.isclose(10 ** round(math.log10(value)), value, rel_tol=1e-9)


def format_measured(value: float, digits: int, roundoff: float | None = None) -> str:
    """``value`` as a ledger prints it: ``digits`` significant digits, or ``< roundoff``.

    Fixed notation for 1e-3 <= |value| < 1e6 (``0.970``, ``-1.99``, ``43.0``), scientific
    notation otherwise (``1.76e-06``); a value below ``roundoff`` in magnitude prints as
    the bound (``< 1e-10``); NaN prints as ``nan``.
    """
    if math.isnan(value):
        return "nan"
    if roundoff is not None and abs(value) < roundoff:
        return f"< {roundoff:.0e}"
    rounded = Decimal(f"{value:.{digits - 1}e}")
    if rounded.is_zero():
        rounded = abs(rounded)
    if rounded.is_zero() or 1e-3 <= abs(rounded) < 1e6:
        return format(rounded, "f")
    return f"{value:.{digits - 1}e}"


class ClaimVerdictMismatch(AssertionError):
    """A verdict observed at a claim's profile differs from the recorded one."""


class ClaimsLedger:
    """Collects the measured value of each claim of one notebook and prints the ledger.

    Usage in a notebook::

        ledger = ClaimsLedger.for_notebook("01_method_and_rates", profile=profile)
        ledger.record("inner-rate", slope)
        ...
        ledger.report()   # the last cell, tagged nbval-check-output
    """

    def __init__(self, claims: ChapterClaims, notebook: str, profile: str):
        self.chapter = claims.chapter
        self.claims = {c.id: c for c in claims.for_notebook(notebook)}
        if not self.claims:
            raise ValueError(f"chapter {claims.chapter!r} has no claims for notebook {notebook!r}")
        self.notebook = notebook
        self.profile = profile
        self.measured: dict[str, float] = {}

    @classmethod
    def for_notebook(cls, notebook: str, profile: str, claims_file: str | Path = "claims.yml"):
        """The ledger of ``notebook``, reading ``claims.yml`` from the chapter folder."""
        return cls(load_claims(claims_file), notebook, profile)

    def record(self, claim_id: str, value: float) -> None:
        """Record the value this run measured for a claim."""
        if claim_id not in self.claims:
            raise KeyError(
                f"claim {claim_id!r} is not a claim of notebook {self.notebook!r}; "
                f"expected one of {sorted(self.claims)}"
            )
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise TypeError(f"value of claim {claim_id!r} must be a number, got {value!r}")
        self.measured[claim_id] = number

    def report(self) -> None:
        """Print every claim of the notebook and fail on a changed verdict.

        A verdict is enforced only when this run used the claim's profile
        (``book``): a smoke or custom run prints its verdicts without judging them.
        """
        missing = [cid for cid in self.claims if cid not in self.measured]
        if missing:
            raise ValueError(f"no value was recorded for claims {missing} of {self.notebook!r}")
        entries = self.entries()
        if os.environ.get(LEDGER_FILE_VARIABLE):
            atomic_write_text(os.environ[LEDGER_FILE_VARIABLE], json.dumps(entries, indent=1) + "\n")
        mismatches = []
        for claim, entry in zip(self.claims.values(), entries):
            print(format_ledger_entry(self.chapter, claim, entry["measured"], entry["observed"], self.profile))
            if entry["enforced"] and entry["observed"] != claim.verdict:
                mismatches.append(f"{claim.id}: observed {entry['observed']}, recorded {claim.verdict}")
        if mismatches:
            raise ClaimVerdictMismatch(
                "verdicts differ from claims.yml (rerun at the book profile, then update "
                "claims.yml with an honest reason if the result really changed): " + "; ".join(mismatches)
            )

    def entries(self) -> list[dict[str, Any]]:
        """The ledger as data, one entry per claim: what :meth:`report` prints, for programs to read."""
        return [
            {
                "chapter": self.chapter,
                "notebook": self.notebook,
                "claim": claim.id,
                "kind": claim.kind,
                "profile": self.profile,
                "measured": self.measured[claim.id],
                "measured_text": claim.measured_text(self.measured[claim.id]),
                "compare": claim.test.compare,
                "threshold": claim.test.threshold,
                "paper_value": claim.paper_value,
                "observed": claim.judge(self.measured[claim.id]),
                "recorded": claim.verdict,
                "recorded_at": claim.profile,
                "enforced": self.profile == claim.profile and claim.sweep is None,
            }
            for claim in self.claims.values()
        ]


def format_ledger_entry(chapter: str, claim: Claim, value: float, observed: str, profile: str) -> str:
    """The fixed-format text of one ledger entry (parsed back by :func:`parse_ledger`)."""
    if profile != claim.profile:
        status = f"not judged at this profile (recorded at {claim.profile}: {claim.verdict})"
    elif claim.sweep is not None:
        status = f"at this run; over the runs of sweep `{claim.sweep}`, the claim's verdict: {claim.verdict}"
    else:
        status = "matches claims.yml" if observed == claim.verdict else f"DIFFERS from claims.yml ({claim.verdict})"
    lines = [
        f"claim {chapter}/{claim.id}" + (" (sanity check)" if claim.kind == "sanity" else ""),
        f"  statement : {claim.statement}",
        f"  paper     : {claim.paper_text()} ({claim.paper_source})",
        f"  metric    : {claim.metric}",
        f"  measured  : {claim.measured_text(value)}",
        f"  test      : {claim.test_text()}",
        f"  verdict   : {observed}, {status}",
    ]
    return "\n".join(lines) + "\n"


_ENTRY = re.compile(r"^claim (?P<chapter>[a-z0-9_]+)/(?P<id>[a-z0-9-]+)( \(sanity check\))?$")
_MEASURED = re.compile(r"^  measured  : (?P<value>\S.*)$")


def parse_ledger(text: str) -> dict[str, str]:
    """Map claim id to its measured value, read back from a printed ledger."""
    values: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        entry = _ENTRY.match(line)
        if entry:
            current = entry["id"]
            continue
        measured = _MEASURED.match(line)
        if measured and current is not None:
            values[current] = measured["value"]
            current = None
    return values
