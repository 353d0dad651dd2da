"""Compare run folders: a table of their models, and their cost curves overlaid.

    python -m experiments.compare RUN_DIR [RUN_DIR ...]
    python -m experiments.compare runs/cat_classifier-* --csv > runs.csv
    python -m experiments.compare RUN_A RUN_B --out ab.png

Reads the metrics.json of any experiment's run folder (finished, interrupted
or resumed) and prints one row per model: the run, the model, the flags that
differ between the runs, the final cost (J of the model the run returned; the
mean over seeds for a seed sweep), train and test accuracy, iterations done,
why it stopped and the training time. A model that has a checkpoint
(MODEL.npz) but no record yet, as in a run killed before it wrote one, is read
from the checkpoint (its cost curve and iterations). ``--csv`` prints the
table as CSV instead, for spreadsheets.

It also draws every model's cost curve (metrics.json's "cost_curve", every
iteration; older runs' printed points) on one log-scaled J axis, labelled by
the run, the model and the differing flags, into one PNG (``--out``, default
runs/compare-<time>.png; the path is printed). A folder that holds no run is
refused with one line.
"""

import argparse
import csv
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from experiments import common, records
from experiments.cli import OneLineParser

# Keys of metrics.json's "config" that describe the machine or the folder,
# not what the run computed: never "flags that differ".
NOT_FLAGS = {
    "jax_version", "backend", "device", "device_count", "process_count",
    "distributed", "out", "overwrite", "no_plots", "no_progress", "progress",
    "resume", "print_every", "flags", "models", "seeds", "layer_dims",
}  # fmt: skip
MAX_LABEL_FLAGS = 4  # curves are labelled by at most this many differing flags
LOG_X_RATIO = 20  # the longest curve over the shortest above this: log x axis
COLUMNS = (
    "run", "model", "final cost", "train acc", "test acc", "iterations",
    "stop reason", "train s",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m experiments.compare",
        description="Compare run folders: a table and the cost curves overlaid.",
        epilog="exit status: 0 compared; 1 a folder holds no run (one line "
        '"error: ..."); 2 usage error',
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    p.add_argument(
        "--out",
        metavar="PNG",
        help="where the cost-curve plot goes (default: runs/compare-<time>.png)",
    )
    p.add_argument("--csv", action="store_true", help="print the table as CSV")
    p.add_argument("--no-plots", action="store_true", help="draw no PNG")
    return p


def load_run(folder) -> dict:
    """The run in ``folder``: {"name", "path", "flags", "models": {name: record}}.

    Raises:
        ValueError: the folder is missing, or holds no run (no readable
            metrics.json with models, and no checkpoint).
    """
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"{folder}: no such folder (expected a run folder)")
    record_path = path / "metrics.json"
    metrics = {}
    if record_path.is_file():
        try:
            metrics = json.loads(record_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{record_path} is not valid JSON ({e})") from None
    models = dict(_models_of(metrics))
    for ckpt in sorted(path.glob("*.npz")):
        if ckpt.stem not in models:
            models[ckpt.stem] = _from_checkpoint(ckpt)
    models = {k: v for k, v in models.items() if v is not None}
    if not models:
        raise ValueError(
            f"{folder} holds no run (no metrics.json with models, no checkpoint): "
            "pass a folder written by python -m experiments.<study>"
        )
    return {
        "name": path.name,
        "path": str(path),
        "flags": _flags_of(metrics.get("config", {})),
        "interrupted": bool(metrics.get("interrupted")),
        "models": models,
    }


def _models_of(metrics: dict):
    for name, model in (metrics.get("models") or {}).items():
        if isinstance(model, dict):
            yield name, model
        elif isinstance(model, list):  # regularization's settings
            for i, m in enumerate(model):
                if isinstance(m, dict):
                    yield str(m.get("setting", f"{name}[{i}]")), m


def _from_checkpoint(path: Path) -> dict | None:
    """What a checkpoint says of a model that has no record in metrics.json."""
    from jaxnet.checkpoint import load_checkpoint

    try:
        _, info = load_checkpoint(path)
    except (OSError, ValueError, KeyError):
        return None
    meta, costs = info["metadata"], info.get("extra", {}).get("costs")
    if costs is None:
        return None
    return {
        "iterations_done": int(meta.get("iterations_done", len(costs))),
        "finished": bool(meta.get("finished")),
        "cost_curve": records.cost_curve(costs),
        "stop_reason": "finished" if meta.get("finished") else "not recorded",
    }


def _flags_of(config: dict) -> dict:
    flags = dict(config.get("flags") or {})
    for k, v in config.items():  # experiments that keep their flags at the top
        if k not in NOT_FLAGS and k not in flags and not isinstance(v, dict):
            flags[k] = v
    return flags


def _number(value):
    """A metric as a float: a number, or the mean of a {"mean", ...} summary."""
    if isinstance(value, dict):
        value = value.get("mean")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _iterations(m: dict):
    for k in ("iterations_done", "epochs_done"):
        if m.get(k) is not None:
            return int(m[k])
    if isinstance(m.get("cost_curve"), dict):
        return int(m["cost_curve"]["iterations"])
    return None


def _stop_reason(m: dict, run: dict) -> str:
    reason = _plain_reason(m, run)
    return f"{reason} (collapsed)" if m.get("collapse") else reason


def _plain_reason(m: dict, run: dict) -> str:
    if m.get("stop_reason"):
        return str(m["stop_reason"])
    if m.get("diverged"):
        return "diverged"
    if m.get("interrupted") or (run["interrupted"] and m.get("finished") is False):
        return "interrupted"
    if m.get("finished") is False:
        return "unfinished"
    return "finished"


def _accuracy(m: dict, key: str):
    """An accuracy as a fraction (learning_rates records percent: > 1)."""
    value = _number(m.get(key))
    return value / 100 if value is not None and value > 1 else value


def _seconds(m: dict):
    if m.get("train_seconds") is not None:
        return _number(m["train_seconds"])
    seconds = m.get("seconds")
    if isinstance(seconds, dict):
        return _number(seconds.get("train", seconds.get("total")))
    return _number(seconds)


def curve_of(m: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(iterations, J) of a model record: its whole curve, else printed points."""
    if isinstance(m.get("cost_curve"), dict):
        return records.curve_points(m["cost_curve"])
    pairs = m.get("costs")
    pair = pairs[0] if isinstance(pairs, list) and pairs else None
    if isinstance(pair, list) and len(pair) == 2 and not isinstance(pair[0], list):
        its, J = zip(*pairs, strict=True)
        J = [np.nan if v is None else v for v in J]
        return np.asarray(its), np.asarray(J, np.float64)
    return None


def differing(runs: list[dict]) -> list[str]:
    """The flag names whose values are not the same in every run."""
    names = sorted({k for run in runs for k in run["flags"]})
    return [
        k
        for k in names
        if len({json.dumps(run["flags"].get(k), sort_keys=True) for run in runs}) > 1
    ]


def _flag(run: dict, m: dict, name: str):
    """A flag's value for one model: the run's flag, or where it is None (the
    experiment's per-model default) the value the model's record says."""
    value = run["flags"].get(name)
    return m.get(name) if value is None and name in m else value


def show(value) -> str:
    """A flag value as it is typed: lists comma-separated, None (a default
    that no record resolves) as "default"."""
    if value is None:
        return "default"
    if isinstance(value, list):
        return ",".join(show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def rows_of(runs: list[dict]) -> tuple[list[str], list[dict]]:
    """The table's header and rows (values as text)."""
    flags = differing(runs)
    header = [COLUMNS[0], COLUMNS[1], *(f"--{k.replace('_', '-')}" for k in flags)]
    header += list(COLUMNS[2:])
    rows = []
    for run in runs:
        for name, m in run["models"].items():
            cost = _number(m.get("final_cost"))
            train = _accuracy(m, "train_accuracy")
            test = _accuracy(m, "test_accuracy")
            seconds = _seconds(m)
            its = _iterations(m)
            row = [run["name"], name, *(show(_flag(run, m, k)) for k in flags)]
            row += [
                "-" if cost is None or not math.isfinite(cost) else f"{cost:.6f}",
                "-" if train is None else f"{100 * train:.2f}%",
                "-" if test is None else f"{100 * test:.2f}%",
                "-" if its is None else str(its),
                _stop_reason(m, run),
                "-" if seconds is None else f"{seconds:.2f}",
            ]
            rows.append(dict(zip(header, row, strict=True)))
    return header, rows


def format_table(header: list[str], rows: list[dict]) -> str:
    """Aligned text columns: names left, numbers right."""
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in header]
    left = {"run", "model", "stop reason"}

    def line(values):
        return "  ".join(
            f"{v:<{w}}" if h in left or h.startswith("--") else f"{v:>{w}}"
            for h, v, w in zip(header, values, widths, strict=True)
        ).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line([r[h] for h in header]) for r in rows]
    return "\n".join(out)


def format_csv(header: list[str], rows: list[dict]) -> str:
    """The table as CSV: accuracies in percent without the sign, "-" empty."""
    percent = {h for h in header if h.endswith(" acc")}
    names = [f"{h} %" if h in percent else h for h in header]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for r in rows:
        writer.writerow(["" if r[h] == "-" else r[h].removesuffix("%") for h in header])
    return buffer.getvalue()


def plot_curves(path: Path, runs: list[dict]) -> int:
    """All models' cost curves on one log-J axis; returns how many were drawn."""
    plt = common.pyplot()
    flags = differing(runs)
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn, lengths = 0, []
    for run in runs:
        for name, m in run["models"].items():
            label_flags = " ".join(
                f"--{k.replace('_', '-')} {show(_flag(run, m, k))}" for k in flags
            )
            curve = curve_of(m)
            if curve is None:
                continue
            its, J = curve
            J = np.where(np.isfinite(J) & (J > 0), J, np.nan)  # log scale
            label = f"{run['name']} {name}"
            if 0 < len(flags) <= MAX_LABEL_FLAGS:  # else the table says them
                label += f" ({label_flags})"
            ax.plot(its + 1, J, label=label)
            drawn += 1
            lengths.append(int(its[-1]) + 1 if len(its) else 1)
    ax.set_yscale("log")
    # Runs of very different lengths: a log iteration axis shows them all.
    wide = bool(lengths) and max(lengths) > LOG_X_RATIO * min(lengths)
    ax.set_xscale("log" if wide else "linear")
    ax.set_xlabel("iteration + 1 (epoch for minibatch runs)")
    ax.set_ylabel("cost J (log scale)")
    ax.set_title("Cost curves")
    ax.grid(alpha=0.3, which="both")
    if drawn:
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    common.save_figure(fig, path, dpi=110)
    return drawn


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    runs = [load_run(folder) for folder in args.runs]
    header, rows = rows_of(runs)
    if args.csv:
        sys.stdout.write(format_csv(header, rows))
    else:
        print(format_table(header, rows))
    png = None
    if not args.no_plots:
        png = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}.png")
        drawn = plot_curves(png, runs)
        print(f"cost curves ({drawn}): {png}", file=sys.stderr if args.csv else None)
    return {"header": header, "rows": rows, "plot": None if png is None else str(png)}


if __name__ == "__main__":
    common.run_cli(main)
