"""The claims ledger: schema of every claims.yml, verdicts, the printed ledger."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest

from conftest import CHAPTERS
from reprobook.book.claims import (
    ClaimsFileError,
    ClaimsLedger,
    ClaimVerdictMismatch,
    format_measured,
    load_claims,
    parse_ledger,
)

CLAIMS = """\
chapter: demo
paper: {title: A paper, authors: Some Authors, arxiv: "2401.00001", year: 2024}
claims:
  - id: fast-rate
    kind: reproduction
    notebook: 01_demo
    statement: the method converges at rate 1/k^2
    paper_value: -2.0
    paper_source: Table 1 of the paper
    metric: fitted slope of the gap against k
    profile: book
    test: {compare: "<=", threshold: -1.9}
    direction: {compare: "<", threshold: 0.0}
    digits: 3
    fails_if: the fitted slope is above -1.9 (slower than 1/k^1.9)
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


def wrong_side(claim, test) -> float:
    """A value on the failing side of a test's threshold (for ``within``: far from the paper's value)."""
    margin = max(0.5 * abs(test.threshold), 1.0)
    if test.compare == "within":
        return claim.paper_value + test.threshold + margin
    return test.threshold + margin if test.compare in ("<", "<=") else test.threshold - margin


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_claim_can_fail(chapter):
    """A value on the wrong side of a claim's threshold (and of its direction) is not-reproduced."""
    for claim in load_claims(chapter.claims_file).claims:
        assert claim.judge(wrong_side(claim, claim.direction or claim.test)) == "not-reproduced", claim.id
        assert claim.judge(wrong_side(claim, claim.test)) != "reproduced", claim.id
        assert claim.fails_if, claim.id


def test_within_compares_with_the_paper_value_on_both_sides(tmp_path):
    text = CLAIMS.replace('test: {compare: "<=", threshold: -1.9}', 'test: {compare: "within", threshold: 0.1}')
    claim = load_claims(write_claims(tmp_path, text)).claims[0]
    paper = claim.paper_value
    assert claim.judge(paper + 0.09) == "reproduced" and claim.judge(paper - 0.09) == "reproduced"
    assert claim.judge(paper + 0.2) != "reproduced" and claim.judge(paper - 0.2) != "reproduced"
    assert claim.test_text().startswith(f"|measured - {paper:g}| <= 0.1")
    no_paper = text.replace("paper_value: -2.0", "paper_value: null")
    with pytest.raises(ClaimsFileError, match="needs a paper_value"):
        load_claims(write_claims(tmp_path, no_paper))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_claim_is_recorded_and_reported_by_its_notebook(chapter):
    for claim in load_claims(chapter.claims_file).claims:
        source = chapter.source(claim.notebook).read_text()
        assert re.search(rf'ledger\.record\(\s*"{claim.id}"', source), f"{claim.notebook} never records {claim.id}"
        assert "ledger.report()" in source


def test_verdicts_follow_the_tests(tmp_path):
    claim = load_claims(write_claims(tmp_path)).claims[0]
    assert claim.judge(-2.0) == "reproduced"
    assert claim.judge(-1.9) == "reproduced"
    assert claim.judge(-1.0) == "reproduced-in-direction"
    assert claim.judge(0.5) == "not-reproduced"
    assert claim.judge(float("nan")) == "not-reproduced"


@pytest.mark.parametrize(
    "change, message",
    [
        (("verdict: reproduced", "verdict: fine"), "verdict"),
        (('compare: "<="', 'compare: "=~"'), "compare"),
        (("    reason: the fitted slope is close to -2\n", ""), "reason"),
        (("id: fast-rate", "id: Fast Rate"), "id"),
        (("profile: book", "profile: weekly"), "profile"),
        (('arxiv: "2401.00001"', 'arxiv: "soon"'), "arxiv"),
        (("digits: 3", "digits: 9"), "digits"),
        (("kind: reproduction", "kind: check"), "kind"),
        (("    fails_if: the fitted slope is above -1.9 (slower than 1/k^1.9)\n", ""), "fails_if"),
        (("digits: 3", "digits: 3\n    roundoff: 3.0e-10"), "roundoff must be a power of ten"),
        (("digits: 3", "digits: 3\n    roundoff: -1.0e-10"), "roundoff"),
    ],
)
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
    assert "measured  : -1.95" in printed
    assert "test      : measured <= -1.9; in direction if measured < 0" in printed
    assert "verdict   : reproduced, matches claims.yml" in printed
    assert "paper     : -2.00 (Table 1 of the paper)" in printed
    assert parse_ledger(printed) == {"fast-rate": "-1.95"}


def test_ledger_fails_when_the_verdict_changes(tmp_path, capsys):
    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=write_claims(tmp_path))
    ledger.record("fast-rate", -1.2)
    with pytest.raises(ClaimVerdictMismatch, match="observed reproduced-in-direction, recorded reproduced"):
        ledger.report()
    assert "DIFFERS from claims.yml" in capsys.readouterr().out


def test_ledger_writes_its_entries_as_json_where_the_environment_says(tmp_path, capsys, monkeypatch):
    import json

    from reprobook.book.claims import LEDGER_FILE_VARIABLE

    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=write_claims(tmp_path))
    ledger.record("fast-rate", -1.2)
    monkeypatch.setenv(LEDGER_FILE_VARIABLE, str(tmp_path / "ledger.json"))
    with pytest.raises(ClaimVerdictMismatch):  # a changed verdict still fails, after the data is written
        ledger.report()
    (entry,) = json.loads((tmp_path / "ledger.json").read_text())
    assert entry["claim"] == "fast-rate" and entry["measured"] == -1.2
    assert (entry["observed"], entry["recorded"], entry["enforced"]) == ("reproduced-in-direction", "reproduced", True)
    assert parse_ledger(capsys.readouterr().out) == {"fast-rate": entry["measured_text"]}


def test_ledger_does_not_judge_other_profiles(tmp_path, capsys):
    ledger = ClaimsLedger.for_notebook("01_demo", profile="smoke", claims_file=write_claims(tmp_path))
    ledger.record("fast-rate", 3.0)
    ledger.report()
    assert "not-reproduced, not judged at this profile" in capsys.readouterr().out


def test_a_paper_profile_claim_waits_as_not_run_until_that_profile_runs(tmp_path, capsys):
    with pytest.raises(ClaimsFileError, match="'not-run' is only for claims judged at the paper profile"):
        load_claims(write_claims(tmp_path, CLAIMS.replace("verdict: reproduced", "verdict: not-run")))
    pending = CLAIMS.replace("verdict: reproduced", "verdict: not-run").replace("profile: book", "profile: paper")
    path = write_claims(tmp_path, pending)
    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=path)
    ledger.record("fast-rate", -1.95)
    ledger.report()
    assert "not judged at this profile (recorded at paper: not-run)" in capsys.readouterr().out
    ledger = ClaimsLedger.for_notebook("01_demo", profile="paper", claims_file=path)
    ledger.record("fast-rate", -1.95)
    with pytest.raises(ClaimVerdictMismatch, match="observed reproduced, recorded not-run"):
        ledger.report()


def test_a_claim_judged_on_a_sweep_prints_its_run_beside_the_sweeps_verdict(tmp_path, capsys):
    swept = CLAIMS.replace("verdict: reproduced", "verdict: inconclusive\n    sweep: seeds")
    ledger = ClaimsLedger.for_notebook("01_demo", profile="book", claims_file=write_claims(tmp_path, swept))
    ledger.record("fast-rate", -1.95)
    ledger.report()  # the single run is the demonstration: its verdict is not enforced
    printed = capsys.readouterr().out
    assert "verdict   : reproduced, at this run; over the runs of sweep `seeds`, the claim's verdict: inconclusive" in (
        printed
    )
    assert ledger.entries()[0]["enforced"] is False
    ledger = ClaimsLedger.for_notebook("01_demo", profile="smoke", claims_file=write_claims(tmp_path, swept))
    ledger.record("fast-rate", -1.95)
    ledger.report()
    assert "not judged at this profile (recorded at book: inconclusive)" in capsys.readouterr().out


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


@pytest.mark.parametrize(
    "value, digits, printed",
    [
        (0.97041, 3, "0.970"),
        (-1.9901, 3, "-1.99"),
        (0.99961, 3, "1.00"),  # rounding carries into a new decade: still three significant digits
        (43.0, 3, "43.0"),
        (1.7612e-6, 3, "1.76e-06"),
        (123456789.0, 3, "1.23e+08"),
        (0.0, 3, "0.00"),
        (1.0, 1, "1"),
        (float("nan"), 3, "nan"),
    ],
)
def test_measured_values_print_their_stable_significant_digits(value, digits, printed):
    assert format_measured(value, digits) == printed


def test_round_off_prints_as_a_bound_and_equal_values_print_equal():
    # the same error at round-off level, as two CPUs' kernels compute it (issue found with SkylakeX)
    assert format_measured(3.4e-12, 2, 1e-10) == format_measured(5.2e-12, 2, 1e-10) == "< 1e-10"
    assert format_measured(-3.4e-12, 2, 1e-10) == "< 1e-10"
    assert format_measured(2.5e-10, 2, 1e-10) == "2.5e-10"  # above the bound: a real error, printed
    assert format_measured(-0.0, 3) == format_measured(0.0, 3) == "0.00"
    # values that differ only beyond the stable digits print equal
    assert format_measured(0.97041, 3) == format_measured(0.97038, 3)
    assert format_measured(-1.99012, 3) == format_measured(-1.98996, 3)


def test_a_value_at_a_rounding_boundary_is_the_documented_exception():
    # 0.9705 +- 1e-8 straddles the boundary between 0.970 and 0.971: no printing rule can make
    # both sides agree; make portability reports it and the claim then declares fewer digits.
    below, above = format_measured(0.97049999, 3), format_measured(0.97050001, 3)
    assert (below, above) == ("0.970", "0.971")
    assert format_measured(0.97049999, 2) == format_measured(0.97050001, 2) == "0.97"


def test_parse_ledger_ignores_other_output():
    text = textwrap.dedent("""\
        some table
          measured  : 1.0
        claim ch/a-claim
          measured  : 0.125
        claim ch/b
          statement : x
          measured  : nan
        claim ch/c
          measured  : < 1e-10
        claim ch/d (sanity check)
          measured  : 0
        """)
    assert parse_ledger(text) == {"a-claim": "0.125", "b": "nan", "c": "< 1e-10", "d": "0"}


def test_unreadable_and_missing_files_are_reported(tmp_path):
    with pytest.raises(ClaimsFileError, match="not valid YAML"):
        load_claims(write_claims(tmp_path, "chapter: [demo"))
    with pytest.raises(FileNotFoundError, match="claims file .* does not exist"):
        load_claims(tmp_path / "nowhere" / "claims.yml")
