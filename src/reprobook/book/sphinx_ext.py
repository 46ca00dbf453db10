"""Sphinx directives the book's pages use, so that tables are generated, never copied.

- ``{claims-table}`` in ``chapters/<slug>/index.md``: the chapter's claims, the
  paper's value, this book's value, the test and the verdict with its reason; for a claim
  judged on a sweep, the median and interval of its value over the runs and how many runs
  are on the verdict's side; where the chapter has other committed sweeps
  (``sweeps/*/robustness.csv``), how often each recorded verdict held across their seeds.
- ``{rerun-box}``: the exact commands to rerun the chapter, with its notebooks'
  parameters, their defaults and the smoke values.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from reprobook.book.chapters import Chapter
from reprobook.book.notebooks import default_parameters
from reprobook.book.profiles import load_profiles
from reprobook.book.scoreboard import chapter_rows, one_line
from reprobook.book.sweep import SWEEPS_FOLDER
from reprobook.book.sweep_report import committed_robustness


def _chapter_of(directive: SphinxDirective) -> Chapter:
    folder = Path(directive.env.doc2path(directive.env.docname)).parent
    directive.env.note_dependency(str(folder / "claims.yml"))
    directive.env.note_dependency(str(folder / "profiles.yml"))
    return Chapter(slug=folder.name, folder=folder)


def _parse(directive: SphinxDirective, lines: list[str]) -> list[nodes.Node]:
    container = nodes.container(classes=[f"reprobook-{directive.name}"])
    directive.state.nested_parse(StringList(lines, source="reprobook"), directive.content_offset, container)
    return [container]


class ClaimsTable(SphinxDirective):
    """The chapter's claims: a table of verdicts, then how each claim is measured."""

    def run(self) -> list[nodes.Node]:
        chapter = _chapter_of(self)
        rows = chapter_rows(chapter)
        for path in sorted((chapter.folder / SWEEPS_FOLDER).glob("*/**/*.*")):
            self.env.note_dependency(str(path))
        robust = committed_robustness(chapter.folder)
        swept = robust or any(row.evidence for row in rows)
        lines = [
            "```{list-table}",
            ":header-rows: 1",
            f":widths: {'32 10 16 14 28' if swept else '46 14 18 22'}",
            ":class: claims-table",
            "",
            "* - claim (in the paper's terms)",
            "  - paper",
            "  - this book (one run)",
            "  - verdict",
        ]
        if swept:
            lines.append("  - across seeds ({doc}`sweeps </book/sweeps>`)")
        for row in rows:
            claim = row.claim
            label = " *(sanity check)*" if claim.kind == "sanity" else ""
            lines += [
                f"* - **{claim.id}**{label}: {one_line(claim.statement)}",
                f"  - {row.paper}",
                f"  - `{row.measured}` (test: `{claim.test_text()}`)",
                f"  - **{claim.verdict}**",
            ]
            if row.evidence:
                lines.append(f"  - median [95 % interval] {row.sweep_text()}")
            elif swept:
                lines.append(f"  - recorded verdict held in {robust.get(claim.id, 'one run: not swept')}")
        lines += ["```", "", "How each claim is measured, and why its verdict is what it is:", ""]
        for row in rows:
            claim = row.claim
            lines += [
                f"**{claim.id}**",
                f": *Paper:* {one_line(claim.paper_source)}. *Measured:* {one_line(claim.metric)} (notebook "
                f"`{claim.notebook}`, profile `{claim.profile}`). *It would fail if* {one_line(claim.fails_if)}. "
                f"*Verdict:* {one_line(claim.reason)}",
                "",
            ]
        return _parse(self, lines)


class RerunBox(SphinxDirective):
    """An admonition with the commands that rerun the chapter."""

    def run(self) -> list[nodes.Node]:
        chapter = _chapter_of(self)
        profiles = load_profiles(chapter.profiles_file)
        first = chapter.notebooks()[0]
        lines = [
            "````{admonition} Rerun this chapter",
            ":class: tip",
            "",
            "From the book's folder, after `make venv` and `source .venv/bin/activate`:",
            "",
            "```bash",
            f"reprobook run {chapter.slug} --profile smoke        # seconds: proves it runs",
            f"reprobook run {chapter.slug} --profile book         # the committed results",
            f"reprobook run {chapter.slug} {first[:2]} -p seed 1         # one notebook, another seed",
            f"papermill chapters/{chapter.slug}/{first}.ipynb _runs/{first}.ipynb \\",
            f"    --cwd chapters/{chapter.slug} -p profile custom -p seed 1",
            "```",
            "",
            "Runs go to `_runs/`, never into the committed notebooks. The parameters of each notebook,",
            "with their defaults (the `book` profile) and, in parentheses, their `smoke` values:",
            "",
        ]
        for notebook in chapter.notebooks():
            defaults = default_parameters(chapter.source(notebook))
            spec = profiles[notebook]
            lines.append(
                f"- `{notebook}`: "
                + "; ".join(
                    f"`{name} = {defaults.get(name)!r}` (`{spec.value_in('smoke', name, defaults)!r}`)"
                    for name in spec.parameters
                )
            )
        return _parse(self, lines + ["````"])


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    """Keep the first of scripts that are the same but for their priority (or None for "").

    Jupyter Book's Thebe extension registers its inline configuration twice, and a page that
    declares ``const THEBE_JS_URL`` twice stops with a JavaScript error.
    """
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("rerun-box", RerunBox)
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
