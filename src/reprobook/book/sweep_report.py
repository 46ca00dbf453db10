"""The report of a sweep: its runs, each claim's seed-robustness, and plots against each swept parameter.

Everything here is read from the runs' records (the ledgers the notebooks stored as
data), never from printed text. :func:`write_report` writes, into the sweep's folder:

- ``runs.csv``: one row per run, with its parameters, seed, status, and each claim's
  measured value and verdict;
- ``robustness.csv``: per claim and per combination of swept values, the distribution
  of the measured value across seeds and how often the recorded verdict held;
- ``plots/<claim>-<parameter>.png``: each claim's value against each swept parameter,
  with the claim's threshold drawn;
- ``report.md``: the same, for a reader (the book embeds one).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from reprobook.atomic import atomic_write_bytes, atomic_write_text
from reprobook.book.claims import WITHIN, load_claims
from reprobook.book.sweep import SETTINGS_FILE, SWEEPS_FOLDER

ROBUSTNESS_FILE = "robustness.csv"


def claim_rows(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, claim) of the runs that finished: the swept values, the seed, the ledger entry."""
    rows = [
        {"key": record["key"], "seed": record["seed"], **record["swept"], **entry}
        for record in records
        if record["status"] == "ok"
        for entry in record["ledger"]
    ]
    return pd.DataFrame(rows)


def runs_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: notebook, swept values, seed, status, and each claim's measured value and verdict."""
    rows = []
    for record in records:
        row = {"notebook": record["notebook"], **record["swept"], "seed": record["seed"], "status": record["status"]}
        for entry in record["ledger"] or []:
            row[entry["claim"]] = entry["measured"]
            row[f"{entry['claim']} verdict"] = entry["observed"]
        rows.append(row)
    return pd.DataFrame(rows)


def robustness(claims: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """Per claim and combination of swept values: the spread across seeds and how often the recorded verdict held."""
    columns = ["notebook", "claim", "kind", *swept]
    groups = claims.groupby(columns, sort=False, dropna=False)
    table = groups.agg(
        seeds=("seed", "size"),
        min=("measured", "min"),
        median=("measured", "median"),
        max=("measured", "max"),
        recorded=("recorded", "first"),
        recorded_at=("recorded_at", "first"),
        held=("held", "sum"),
    ).reset_index()
    table["held"] = table["held"].astype(int)
    table["holds"] = [f"{h} of {n}" for h, n in zip(table["held"], table["seeds"])]
    return table


def plot_against(claims: pd.DataFrame, claim: str, parameter: str) -> Figure:
    """A claim's value at each seed against one swept parameter, the median across seeds, and the threshold."""
    rows = claims[claims["claim"] == claim]
    first = rows.iloc[0]
    figure = Figure(figsize=(4.5, 3.2), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(rows[parameter], rows["measured"], s=14, alpha=0.6, color="tab:blue", label="one seed")
    medians = rows.groupby(parameter)["measured"].median()
    axes.plot(medians.index, medians.values, color="tab:blue", label="median over seeds")
    if first["compare"] == WITHIN:
        for bound in (first["paper_value"] - first["threshold"], first["paper_value"] + first["threshold"]):
            axes.axhline(bound, color="tab:red", linestyle="--")
    else:
        axes.axhline(
            first["threshold"],
            color="tab:red",
            linestyle="--",
            label=f"test: {first['compare']} {first['threshold']:g}",
        )
    values = rows[parameter]
    if pd.api.types.is_numeric_dtype(values) and values.min() > 0 and values.max() >= 10 * values.min():
        axes.set_xscale("log")
    axes.set(xlabel=parameter, ylabel="measured", title=claim)
    axes.legend(fontsize="small")
    return figure


def _save(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".3g")


def in_plan_order(settings: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records by notebook, swept values and seed: the same report whichever order the runs finished in."""

    def position(record: dict[str, Any]) -> tuple:
        values = tuple(record["swept"][name] for name in settings["grid"])
        return settings["notebooks"].index(record["notebook"]), values, record["seed"]

    return sorted(records, key=position)


def verdict_lines(claims_file: Path, records: list[dict[str, Any]]) -> list[str]:
    """For a sweep over seeds only: each claim's median, interval, runs and the verdict the book's rule gives."""
    from reprobook.book.evidence import MIN_RUNS, judge_runs

    rows = []
    for claim in load_claims(claims_file).claims:
        values = [e["measured"] for r in records if r["status"] == "ok" for e in r["ledger"] if e["claim"] == claim.id]
        if len(values) >= MIN_RUNS:
            evidence = judge_runs(claim, values)
            rows.append(
                f"| {claim.id} | {evidence.interval_text()} | {evidence.runs_text()} | {evidence.verdict} "
                f"| {claim.verdict} |"
            )
    if not rows:
        return []
    return [
        "## Verdicts by the book's rule",
        "",
        "Each claim's median over the runs and the 95 % bootstrap interval of the median, the runs on",
        "the verdict's side, the verdict the rule gives (see the scoreboard) and the one `claims.yml`",
        "records (equal for a claim judged on this sweep).",
        "",
        "| claim | median [95 % interval] | runs | rule | claims.yml |",
        "|:--|:--|:--|:--|:--|",
        *rows,
        "",
    ]


def write_report(
    folder: Path, settings: dict[str, Any], records: list[dict[str, Any]], claims_file: Path | None = None
) -> Path:
    """Write the sweep's tables, plots, settings and ``report.md`` into ``folder``; return the report's path.

    With the chapter's ``claims_file``, the verdicts the report compares with are those it
    records now; for a sweep over seeds only, the report also gives each claim's verdict by
    the book's rule.
    """
    swept = list(settings["grid"])
    records = in_plan_order(settings, records)
    runs = runs_table(records)
    atomic_write_text(folder / "runs.csv", runs.to_csv(index=False))
    atomic_write_text(folder / SETTINGS_FILE, json.dumps(settings, indent=1) + "\n")
    claims = claim_rows(records)
    failed = runs[runs["status"] != "ok"]
    ok = len(runs) - len(failed)
    lines = [
        f"# Sweep of `{settings['chapter']}`: {', '.join(f'`{n}`' for n in settings['notebooks'])}",
        "",
        f"Profile `{settings['profile']}` with seeds {settings['seeds']}"
        + "".join(f", `{name}` in {values}" for name, values in settings["grid"].items())
        + f": {len(runs)} runs, {ok} finished, {len(failed)} failed. Command:",
        "",
        f"```bash\n{settings['command']}\n```",
        "",
    ]
    if not claims.empty:
        if claims_file is not None:  # the verdicts recorded now, not when the runs were made
            recorded = {claim.id: claim for claim in load_claims(claims_file).claims}
            claims["recorded"] = [recorded[c].verdict for c in claims["claim"]]
            claims["recorded_at"] = [recorded[c].profile for c in claims["claim"]]
        claims["held"] = claims["observed"] == claims["recorded"]
        table = robustness(claims, swept)
        atomic_write_text(folder / ROBUSTNESS_FILE, table.to_csv(index=False))
        shown = table.drop(columns=["notebook", "held", "seeds"])
        lines += [
            "## How often each claim's recorded verdict holds",
            "",
            "`recorded` is the verdict in `claims.yml`, judged at the profile `recorded_at`; `holds` counts",
            "the seeds at which this sweep's measured value earns that same verdict. `min`, `median` and",
            "`max` are the measured value's spread across seeds.",
            "",
            _markdown(shown),
            "",
        ]
        if not swept and claims_file is not None:
            lines += verdict_lines(claims_file, records)
        plotted = [name for name in swept if claims[name].nunique() > 1]
        if plotted:
            lines += ["## Each claim against each swept parameter", ""]
        for parameter in plotted:
            for claim in claims["claim"].unique():
                name = f"plots/{claim}-{parameter}.png"
                _save(plot_against(claims, claim, parameter), folder / name)
                lines += [f"![{claim} against {parameter}]({name})", ""]
    lines += ["## Every run", "", _markdown(runs.drop(columns=["notebook"])), ""]
    if not failed.empty:
        errors = {r["key"]: r["error"] for r in records if r["status"] != "ok"}
        lines += ["## Failed runs", ""] + [f"- `{key}`: {error}" for key, error in errors.items()] + [""]
    return atomic_write_text(folder / "report.md", "\n".join(lines))


def committed_robustness(chapter_folder: Path) -> dict[str, str]:
    """Per claim, its seed-robustness across the chapter's committed sweeps: ``"28 of 30 runs (strength)"``."""
    shown: dict[str, list[str]] = {}
    for path in sorted((chapter_folder / SWEEPS_FOLDER).glob(f"*/{ROBUSTNESS_FILE}")):
        table = pd.read_csv(path)
        for claim, rows in table.groupby("claim", sort=False):
            shown.setdefault(claim, []).append(
                f"{rows['held'].sum()} of {rows['seeds'].sum()} runs (sweep `{path.parent.name}`)"
            )
    return {claim: "; ".join(texts) for claim, texts in shown.items()}
