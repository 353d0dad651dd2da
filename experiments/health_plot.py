"""Training-health records and plots shared by the experiments.

``health_record(result, activations)`` turns a run's readings
(``RunResult.health``, recorded inside the compiled run, see
``jaxnet.health``) into the metrics.json record of a model:

    {"iterations": [i, ...],                          the recorded points (P,)
     "readings": {"dead": [[per layer] per point], ...},   (P, L) lists
     "hints": ["every unit is dead in layer(s) [2] ...", ...],
     "thresholds": {...}}

A reading that does not apply to a layer (``jaxnet.health.NOT_APPLICABLE``)
is written as null. ``plot_health(path, records)`` draws health.png: one row
per model, one panel per reading, one line per layer.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from experiments import common
from jaxnet import health as H

# (field, panel title, log scale)
PANELS = (
    ("dead", "dead relu units (fraction)", False),
    ("saturated", f"saturated units (|g'| < {H.SATURATION:g} max g')", False),
    ("grad_norm", "||dW[l]||", True),
    ("weight_norm", "||W[l]||", True),
    ("update_ratio", "||alpha dW[l]|| / ||W[l]||", True),
    ("symmetric", "symmetric units (all rows equal)", False),
)


def health_record(result, activations: Sequence[str]) -> dict | None:
    """The metrics.json "health" record of a run, or None when it recorded none
    (health off, or a finished model restored from its checkpoint)."""
    if result.health is None:
        return None
    readings = {}
    for field in H.Health._fields:
        values = np.asarray(getattr(result.health, field))
        if values.dtype == bool:
            readings[field] = values.tolist()
        else:
            listed = values.astype(float).tolist()
            na = values == H.NOT_APPLICABLE
            readings[field] = [
                [None if skip else v for v, skip in zip(row, mask, strict=True)]
                for row, mask in zip(listed, na.tolist(), strict=True)
            ]
    iterations = np.asarray(result.health_iterations)
    return {
        "iterations": iterations.tolist(),
        "activations": list(activations),
        "readings": readings,
        "hints": H.hints(result.health, activations, iterations),
        "thresholds": {
            "saturation": H.SATURATION,
            "symmetry_tol": H.SYMMETRY_TOL,
            "vanishing": H.VANISHING,
            "large_update": H.LARGE_UPDATE,
        },
    }


def _layer_lines(ax, iterations, values, log: bool) -> str:
    """One line per layer (skipping layers where the reading never applies).

    Returns "drawn" when a line was drawn, "zero" when the reading applies but
    is 0 at every point (nothing to show on a log axis: W = 0 gives dW = 0),
    "none" when it applies to no layer."""
    drawn, zero = False, False
    for l in range(values.shape[1]):
        column = np.array([np.nan if v is None else float(v) for v in values[:, l]])
        zero |= bool(np.any(column == 0))
        if log:
            column = np.where(column > 0, column, np.nan)
        if np.all(np.isnan(column)):
            continue
        ax.plot(iterations, column, marker=".", label=f"layer {l + 1}")
        drawn = True
    return "drawn" if drawn else "zero" if zero else "none"


def plot_health(path, records: Mapping[str, dict | None], title: str = "") -> bool:
    """health.png: a row of panels per model (one per reading), a line per layer.

    Args:
        path: the PNG to write.
        records: model name -> ``health_record`` (None entries are skipped).
        title: the figure's title.

    Returns:
        Whether a figure was written (False: no model recorded any point).
    """
    shown = {k: r for k, r in records.items() if r and r["iterations"]}
    if not shown:
        return False
    plt = common.pyplot()
    rows, cols = len(shown), len(PANELS)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.1 * cols, 2.6 * rows + 0.6), squeeze=False
    )
    for r, (name, record) in enumerate(shown.items()):
        iterations = np.asarray(record["iterations"])
        for c, (field, label, log) in enumerate(PANELS):
            ax = axes[r, c]
            values = np.array(record["readings"][field], dtype=object)
            if field == "symmetric":
                values = values.astype(float)
            drawn = _layer_lines(ax, iterations, values, log)
            if drawn != "drawn":
                note = "0 at every point" if drawn == "zero" else "not applicable"
                ax.text(0.5, 0.5, note, ha="center", va="center",
                        transform=ax.transAxes, color="grey")  # fmt: skip
            elif log:
                ax.set_yscale("log")
            if field in ("dead", "saturated", "symmetric"):
                ax.set_ylim(-0.05, 1.05)
            ax.set_title(f"{name}: {label}" if c == 0 else label, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if r == rows - 1:
                ax.set_xlabel("iteration", fontsize=8)
        handles, labels = axes[r, 2].get_legend_handles_labels()
        if handles:
            axes[r, 2].legend(handles, labels, fontsize=7)
    if title:
        fig.suptitle(title)
    common.save_figure(fig, path, dpi=90)
    return True
