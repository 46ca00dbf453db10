"""Plot helpers shared by the chapters: one look for the whole book."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def book_style() -> None:
    """The book's matplotlib style: white grid, readable fonts, fixed figure size and dpi."""
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.figsize": (10, 4), "figure.dpi": 90, "savefig.dpi": 90, "legend.fontsize": 9})


def loglog_curves(
    ax, curves: dict[str, tuple[np.ndarray, np.ndarray]], ylabel: str, title: str, references: tuple[int, ...] = ()
) -> None:
    """Draw ``label -> (k, values)`` on log-log axes, k ≥ 1 and values > 0 only.

    ``references`` adds dashed guide lines C/k^p for each power p, anchored at
    the first curve's value at k = 1, so a reader can compare slopes by eye.
    """
    for label, (k, values) in curves.items():
        kept = (k >= 1) & (values > 0)
        ax.loglog(k[kept], values[kept], label=label, lw=1.6)
    if references:
        k, values = next(iter(curves.values()))
        grid = np.geomspace(1, k.max(), 50)
        anchor = values[1] if len(values) > 1 and values[1] > 0 else 1.0
        for power in references:
            ax.loglog(grid, anchor * grid ** (-power), ls="--", lw=1, color="gray", alpha=0.7)
            ax.annotate(
                f"$1/k^{power}$" if power != 1 else "$1/k$",
                (grid[-1], anchor * grid[-1] ** (-power)),
                fontsize=8,
                color="gray",
                ha="right",
                va="bottom",
            )
    ax.set_xlabel("iteration k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="lower left")


def error_bar_curves(ax, summary, x: str, group: str, xlabel: str, ylabel: str, title: str) -> None:
    """Draw one curve per ``group`` of ``summary`` (columns ``x``, ``mean``, ``se``): means with standard-error bars."""
    for name, rows in summary.groupby(group, sort=False):
        ax.errorbar(rows[x], rows["mean"], rows["se"], marker="o", capsize=3, label=name)
    ax.set(xscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
