"""The claims ledger: schema of every claims.yml, verdicts, the printed ledger."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from conftest import CHAPTERS
from reprobook.book.claims import (
    ClaimsFileError, ClaimsLedger, ClaimVerdictMismatch, load_claims, parse_ledger,
)

CLAIMS = """\
chapter: demo
paper: {title: A paper, authors: Some Authors, arxiv: "2401.00001", year: 2024}
claims:
  - id: fast-rate
    notebook: 01_demo
    statement: the method converges at rate 1/k^2
    paper_value: -2.0
    paper_source: Table 1 of the paper
    metric: fitted slope of the gap against k
    profile: book
    test: {compare: "<=", threshold: -1.9}
    direction: {compare: "<", threshold: 0.0}
    format: ".3f"
    verdict: reproduced
    reason: the fitted slope is close to -2
"""


def write_claims(tmp_path, text=CLAIMS):
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    (folder / "claims.yml").write_text(text)
    return folder / "claims.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_chapter_claims_file_is_valid(chapter):
    claims = load_claims(chapter.claims_file)
    notebooks = set(chapter.notebooks())
    assert claims.claims, "a chapter must have claims"
    for claim in claims.claims:
        assert claim.notebook in notebooks, f"claim {claim.id} names unknown notebook {claim.notebook}"
        assert claim.judge(claim.test.threshold) in {"reproduced", "not-reproduced"}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_claim_is_recorded_and_reported_by_its_notebook(chapter):
    for claim in load_claims(chapter.claims_file).claims:
        source = chapter.source(claim.notebook).read_text()
        assert f'ledger.record("{claim.id}"' in source, f"{claim.notebook} never records {claim.id}"
        assert "ledger.report()" in source


def test_verdicts_follow_the_tests(tmp_path):
    claim = load_claims(write_claims(tmp_path)).claims[0]
    assert claim.judge(-2.0) == "reproduced"
    assert claim.judge(-1.9) == "reproduced"
    assert claim.judge(-1.0) == "reproduced-in-direction"
    assert claim.judge(0.5) == "not-reproduced"
    assert claim.judge(float("nan")) == "not-reproduced"


@pytest.mark.parametrize("change, message", [
    (("verdict: reproduced", "verdict: fine"), "verdict"),
    (("compare: \"<=\"", "compare: \"=~\""), "compare"),
    (("    reason: the fitted slope is close to -2\n", ""), "reason"),
    (("id: fast-rate", "id: Fast Rate"), "id"),
    (("profile: book", "profile: weekly"), "profile"),
    (("arxiv: \"2401.00001\"", "arxiv: \"soon\""), "arxiv"),
])
def test_schema_errors_name_the_field(tmp_path, change, message):
    path = write_claims(tmp_path, CLAIMS.replace(*change))
    with pytest.raises(ClaimsFileError, match=message):
        load_claims(path)


def test_duplicate_ids_and_wrong_chapter_are_rejected(tmp_path):
    item = CLAIMS.split("claims:\n")[1]
    with pytest.raises(ClaimsFileError, match="unique"):
        load_claims(write_claims(tmp_path, CLAIMS + item))
    with pytest.raises(ClaimsFileError, match="folder"):
        load_claims(write_claims(tmp_path, CLAIMS.replace("chapter: demo", "chapter: other")))


def test_ledger_passes_when_the_verdict_matches(tmp_path, capsys):
    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=write_claims(tmp_path))
    ledger.record("fast-rate", np.float64(-1.95))
    ledger.report()
    printed = capsys.readouterr().out
    assert "measured  : -1.950" in printed
    assert "verdict   : reproduced, matches claims.yml" in printed
    assert "paper     : -2.000 (Table 1 of the paper)" in printed
    assert parse_ledger(printed) == {"fast-rate": "-1.950"}


def test_ledger_fails_when_the_verdict_changes(tmp_path, capsys):
    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=write_claims(tmp_path))
    ledger.record("fast-rate", -1.2)
    with pytest.raises(ClaimVerdictMismatch, match="observed reproduced-in-direction, recorded reproduced"):
        ledger.report()
    assert "DIFFERS from claims.yml" in capsys.readouterr().out


def test_ledger_does_not_judge_other_profiles(tmp_path, capsys):
    ledger = ClaimsLedger.for_notebook("01_demo", profile="smoke", claims_file=write_claims(tmp_path))
    ledger.record("fast-rate", 3.0)
    ledger.report()
    assert "not-reproduced, not judged at this profile" in capsys.readouterr().out


def test_ledger_rejects_unknown_missing_and_non_numeric(tmp_path):
    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=write_claims(tmp_path))
    with pytest.raises(KeyError, match="slow-rate"):
        ledger.record("slow-rate", 1.0)
    with pytest.raises(TypeError, match="fast-rate"):
        ledger.record("fast-rate", "fast")
    with pytest.raises(TypeError, match="fast-rate"):
        ledger.record("fast-rate", True)
    with pytest.raises(ValueError, match="no value was recorded"):
        ledger.report()
    with pytest.raises(ValueError, match="no claims for notebook"):
        ClaimsLedger.for_notebook("02_other", profile="book", claims_file=write_claims(tmp_path))


def test_parse_ledger_ignores_other_output():
    text = textwrap.dedent("""\
        some table
          measured  : 1.0
        claim ch/a-claim
          measured  : 0.125
        claim ch/b
          statement : x
          measured  : nan
        """)
    assert parse_ledger(text) == {"a-claim": "0.125", "b": "nan"}


def test_unreadable_and_missing_files_are_reported(tmp_path):
    with pytest.raises(ClaimsFileError, match="not valid YAML"):
        load_claims(write_claims(tmp_path, "chapter: [demo"))
    with pytest.raises(FileNotFoundError, match="claims file .* does not exist"):
        load_claims(tmp_path / "nowhere" / "claims.yml")
