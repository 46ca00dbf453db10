"""The rendered book: a warning-free build, then a real headless browser with the network off."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHAPTERS, NOTEBOOKS, ROOT
from reprobook.book.claims import load_claims

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
NEEDS_BROWSER = (
    "the browser check needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver); .ci/run installs them"
)


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    if not (ROOT / "_assets" / "mathjax" / "tex-mml-chtml.js").is_file():
        pytest.fail("MathJax is not vendored: run `make book` or `make test`, which copy it from npm")
    output = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "jupyter-book"),
            "build",
            "--all",
            "--warningiserror",
            "--nitpick",
            "--keep-going",
            "--path-output",
            str(output),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, "the book build failed or warned:\n" + result.stdout[-4000:] + result.stderr[-4000:]
    return output / "_build" / "html"


def test_pages_refer_to_nothing_online(html):
    loaded = re.compile(r"<(script|link|img)\b[^>]*\b(src|href)=\"(https?:)?//", re.I)
    offenders = [str(page.relative_to(html)) for page in html.rglob("*.html") if loaded.search(page.read_text())]
    assert not offenders, f"pages load resources from the network: {offenders}"
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file(), "MathJax is not shipped with the book"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(NEEDS_BROWSER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read by console_errors
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        # the network is off: every request that is not a local file goes nowhere
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, page: Path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.execute_script("return document.querySelectorAll('mjx-container').length") > 0
        )
    )


def console_errors(browser) -> list[str]:
    """The errors the console logged since it was last read."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def every_page(html, browser) -> dict[str, dict]:
    """Each page opened once: the errors its console logged, its tables and ledgers wider than the column."""
    from selenium.webdriver.support.ui import WebDriverWait

    console_errors(browser)  # what earlier tests left
    seen = {}
    for page in sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_")):
        browser.get(page.as_uri())
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
        wide_tables = browser.execute_script("""
            const column = document.querySelector('article.bd-article');
            if (!column) return [];
            const edge = column.getBoundingClientRect().right + 1;
            return Array.from(column.querySelectorAll('table'))
                .filter(table => table.getBoundingClientRect().right > edge)
                .map(table => table.innerText.slice(0, 60));""")
        wide_ledgers = browser.execute_script("""
            return Array.from(document.querySelectorAll('div.tag_nbval-check-output div.cell_output pre'))
                .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
                .map(pre => pre.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''));""")
        seen[str(page.relative_to(html))] = {
            "errors": console_errors(browser),
            "wide tables": wide_tables,
            "wide ledgers": wide_ledgers,
        }
    return seen


def test_no_page_logs_a_console_error(every_page):
    assert len(every_page) > 40
    logged = {page: seen["errors"] for page, seen in every_page.items() if seen["errors"]}
    assert not logged, f"pages log JavaScript errors: {logged}"


def test_no_table_runs_past_the_column(every_page):
    """A wide table (the scoreboard, a sweep report) scrolls inside the column: no column is cut off."""
    overflowing = {page: seen["wide tables"] for page, seen in every_page.items() if seen["wide tables"]}
    assert not overflowing, f"tables wider than the page's column: {overflowing}"


def test_every_ledger_reads_whole_at_the_columns_width(every_page):
    """A claims ledger's long lines (statement, paper, metric) wrap inside the column, not past it."""
    overflowing = {page: seen["wide ledgers"] for page, seen in every_page.items() if seen["wide ledgers"]}
    assert not overflowing, f"ledgers wider than the page's column (their longest line): {overflowing}"


@pytest.mark.parametrize("slug", sorted({chapter.slug for chapter, _ in NOTEBOOKS}))
def test_chapter_page_renders_math_and_claims(html, browser, slug):
    open_page(browser, html / "chapters" / slug / "index.html")
    script = browser.execute_script
    assert script("return document.querySelectorAll('mjx-container').length") > 0, "math is not typeset"
    assert "MathJax" in script("return Object.keys(window).join(' ')")
    table = script("const t = document.querySelector('table.claims-table'); return t ? t.innerText : ''")
    for claim in load_claims(ROOT / "chapters" / slug / "claims.yml").claims:
        assert claim.id in table and claim.verdict in table, f"claim {claim.id} missing from the rendered table"
    assert "Rerun this chapter" in script("return document.body.innerText")


@pytest.mark.parametrize("chapter, name", NOTEBOOKS, ids=lambda v: getattr(v, "slug", v))
def test_notebook_pages_show_figures_math_and_ledger(html, browser, chapter, name):
    open_page(browser, html / "chapters" / chapter.slug / f"{name}.html")
    script = browser.execute_script
    figures = script("return Array.from(document.images).filter(i => i.complete && i.naturalWidth > 100).length")
    assert figures >= 1, "no figure was drawn"
    assert "verdict   :" in script("return document.body.innerText"), "the claims ledger is not shown"
    assert script("return document.querySelectorAll('mjx-container').length") > 0
    code = script("return document.querySelectorAll('div.cell_input pre').length")
    overflowing = script("""
        return Array.from(document.querySelectorAll('div.cell_input pre'))
            .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
            .map(pre => pre.innerText.split('\\n').find(line => line.length > 80) || '');""")
    assert code > 0 and not overflowing, f"code cells wider than the page's column: {overflowing}"


def test_exercise_solutions_are_collapsed(html, browser):
    pages = [html / "chapters" / c.slug / f"{n}.html" for c, n in NOTEBOOKS]
    with_solutions = [p for p in pages if 'class="solution dropdown' in p.read_text()]
    assert with_solutions, "no chapter has exercises"
    for page in with_solutions:
        open_page(browser, page)
        hidden = browser.execute_script("""
            return Array.from(document.querySelectorAll('.solution.dropdown')).map(box =>
                Array.from(box.children)
                    .filter(c => !c.classList.contains('admonition-title') && c.tagName !== 'BUTTON')
                    .every(c => c.offsetHeight === 0));""")
        assert hidden and all(hidden), f"{page.name}: solutions must start collapsed: {hidden}"


def test_sweeps_page_embeds_a_committed_sweep_and_its_chapter_shows_the_counts(html):
    import pandas as pd

    from reprobook.book.sweep_report import committed_robustness

    page = (html / "book" / "sweeps.html").read_text()
    assert "How often each claim’s recorded verdict holds" in page or "How often each claim's recorded" in page
    images = re.findall(r'<img [^>]*src="([^"]+\.png)"', page)
    assert len(images) >= 3 and all((html / "book" / src).resolve().is_file() for src in images)
    chapter = ROOT / "chapters" / "prox24"
    robustness = pd.read_csv(chapter / "sweeps" / "strength" / "robustness.csv")
    assert set(robustness["claim"]) <= {c.id for c in load_claims(chapter / "claims.yml").claims}
    index = (html / "chapters" / "prox24" / "index.html").read_text()
    assert "across seeds" in index and "recorded verdict held in" in index
    # a claim judged on a sweep shows that sweep's evidence instead (the next test)
    judged_on_sweeps = {c.id for c in load_claims(chapter / "claims.yml").claims if c.sweep}
    shown = {claim: text for claim, text in committed_robustness(chapter).items() if claim not in judged_on_sweeps}
    assert shown, "prox24 keeps a claim that is not judged on a sweep but appears in one"
    for text in shown.values():
        assert text.split(" (")[0] in index  # "30 of 30 runs"


def test_chapters_judged_on_sweeps_show_the_evidence_beside_each_claim(html):
    from html import escape

    from reprobook.book.evidence import chapter_evidence

    for chapter in CHAPTERS:
        evidence = chapter_evidence(chapter)
        if not evidence:
            continue
        index = (html / "chapters" / chapter.slug / "index.html").read_text()
        for claim_id, found in evidence.items():
            shown = escape(found.interval_text(), quote=False), escape(found.runs_text(), quote=False)
            assert all(text in index for text in shown), f"{chapter.slug}/{claim_id}: {shown}"
