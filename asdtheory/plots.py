"""Figures the notebooks share (matplotlib; the library imports it only here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["COLOURS", "plot_vs_condition"]

# One colour per method in every notebook's figures (matplotlib's tab10 names).
COLOURS = {"subcluster-adacos": "tab:blue", "deep-svdd": "tab:orange",
           "autoencoder": "tab:green", "subcluster-adacos+random-labels": "tab:red",
           "class-compactness": "tab:purple", "subcluster-adacos+trainable-centres": "tab:brown",
           "adaproj": "tab:pink"}


def plot_vs_condition(ax, values, *, conditions: Sequence[str], methods: Sequence[str],
                      ylabel: str):
    """Mean over seeds (line) and the minimum-maximum range over seeds (band) of
    values[m, c, s] for each method m against the conditions c, on a matplotlib Axes."""
    values = np.asarray(values, np.float64)
    if values.ndim != 3 or values.shape[:2] != (len(methods), len(conditions)):
        raise ValueError(f"values must be (methods, conditions, seeds) = ({len(methods)}, "
                         f"{len(conditions)}, S), got shape {values.shape}.")
    x = np.arange(len(conditions))
    for name, v in zip(methods, values, strict=True):
        (line,) = ax.plot(x, v.mean(axis=-1), marker="o", label=name)
        ax.fill_between(x, v.min(axis=-1), v.max(axis=-1), color=line.get_color(), alpha=0.2)
    ax.set_xticks(x, list(conditions))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax
