"""Do small random weights train faster? The lecture's initialization claims, measured.

Question: the lecture says W cannot be initialized to 0, and that small random
weights, W = randn * 0.01, train faster "because the activation functions of
neurons stimulated by values a little bit greater than 0 usually have the
biggest slopes". Holding the network, data, learning rate and iterations fixed,
how do W = 0, W*0.01, W*1, W*10, Xavier (randn * sqrt(2 / (n[l-1] + n[l]))) and
He (randn * sqrt(2 / n[l-1])) compare, with b = 0 always?

    cats            [12288, 20, 7, 5, 1], ReLU hidden, sigmoid output (the
                    course's deep cat network), alpha = 0.0075, 2500 iterations
    flower          [2, 10, 10, 10, 1], tanh hidden (a deep network on the
                    planar flower), alpha = 0.3, 5000 iterations
    flower_shallow  [2, 4, 1], tanh hidden (the course's shallow network),
                    alpha = 1.2, 5000 iterations

Every initialization draws the same standard normal numbers (one key per
network) and scales them, so the rows differ only in the scale. The six
settings of a network train at once: one vmapped ``jaxnet.sweep`` with stacked
initial params.

Expected (measured; docs/initialization.md): W = 0 never learns anything but
the output bias: every hidden row of W stays exactly equal (here exactly 0),
the symmetry the lecture warns about. W*0.01 trains the shallow network, but
in the deep ones the signal shrinks ~ 0.01 sqrt(n) per layer and so do the
gradients: the deep cat network and the deep flower network do not leave the
constant-prediction cost. W*1 and W*10 saturate or blow up wide layers. Xavier
and He reach J < 0.3 on every network.

    python -m experiments.initialization
    python -m experiments.initialization --networks flower --iterations 2000

The run folder (--out) gets metrics.json (a table, every model's cost curve,
the hidden-row spreads, the training-health readings and their hints, recorded
inside the compiled sweep at ~50 points), costs.png and health-<network>.png
(one row per initialization: dead ReLU units, saturated tanh units, ||dW[l]||,
||W[l]||, the update ratio, symmetric units; one line per layer).
"""

import time
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common, records, study_data
from experiments.health_plot import health_record, plot_health
from jaxnet.health import Health
from jaxnet.params import init_params
from jaxnet.runner import cost_checkpoints, train_loop
from jaxnet.sweep import sweep, unstack

NAME = "initialization"
LEVEL = 0.3  # "iterations to J < LEVEL" in the table
HEALTH_POINTS = 50  # training-health readings recorded at ~this many iterations
# The initializations compared (keys of jaxnet.params.INIT_SCALES) and how the
# table names them.
INITS = {
    "zeros": "W = 0",
    "small": "W*0.01",
    "unit": "W*1",
    "large": "W*10",
    "xavier": "Xavier",
    "he": "He",
}
NETWORKS = {
    "cats": dict(
        layer_dims=[12288, 20, 7, 5, 1], hidden="relu", learning_rate=0.0075,
        iterations=2500,
    ),
    "flower": dict(
        layer_dims=[2, 10, 10, 10, 1], hidden="tanh", learning_rate=0.3,
        iterations=5000,
    ),
    "flower_shallow": dict(
        layer_dims=[2, 4, 1], hidden="tanh", learning_rate=1.2, iterations=5000,
    ),
}  # fmt: skip


def build_parser():
    parser = cli.build_parser(
        "python -m experiments.initialization", __doc__,
        iterations=None, learning_rate=None, seed=0, dtype="float32",
        print_every=0, data=None, resume=False,
        unset=dict.fromkeys(("iterations", "learning_rate"),
                            "each network's own (see the module doc)"),
    )  # fmt: skip
    parser.add_argument(
        "--networks",
        type=cli.names_of(NETWORKS, "networks"),
        default=list(NETWORKS),
        help="networks to study",
    )
    parser.add_argument(
        "--inits",
        type=cli.names_of(INITS, "initializations"),
        default=list(INITS),
        help="initializations to compare (jaxnet.params.INIT_SCALES)",
    )
    return parser


def stacked_inits(key, layer_dims, inits, dtype):
    """One params per init from the same key (the same normal draws, scaled),
    stacked: W[l] (N, n[l], n[l-1]), b[l] (N, n[l], 1)."""
    each = [init_params(key, layer_dims, method, dtype) for method in inits]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *each)


def row_spread(params) -> list[dict]:
    """How far the hidden units of each hidden layer are from being identical.

    For hidden layer l (W[l] (n[l], n[l-1]), b[l] (n[l], 1)): spread =
    max over units i of max |[W[l] b[l]][i, :] - [W[l] b[l]][0, :]|, 0 exactly
    when every unit computes the same function of A[l-1]; and size = max |W[l]|
    (a spread of 0 with size 0: every weight of the layer is still 0).
    """
    out = []
    for l, layer in enumerate(params[:-1], start=1):
        rows = np.concatenate([np.asarray(layer["W"]), np.asarray(layer["b"])], 1)
        out.append(
            {
                "layer": l,
                "units": int(rows.shape[0]),
                "spread": float(np.max(np.abs(rows - rows[0]))),
                "size": float(np.max(np.abs(np.asarray(layer["W"])))),
            }
        )
    return out


def iterations_to(costs, level: float) -> int | None:
    """The first iteration i with costs[i] < level (None: never)."""
    below = np.asarray(costs) < level
    return int(np.argmax(below)) if below.any() else None


def run_network(name, setting, inits, data, args, dtype, stop) -> tuple[dict, list]:
    """Every init of one network in one sweep, under ``jaxnet.stopping``'s
    rules; returns the metrics per init and their cost rows."""
    X, Y, X_test, Y_test = data
    dims = setting["layer_dims"]
    activations = (setting["hidden"],) * (len(dims) - 2) + ("sigmoid",)
    key = records.model_key(args.seed, name)
    params = stacked_inits(key, dims, inits, dtype)
    start = time.perf_counter()
    result = sweep(
        params, X, Y, activations=activations,
        num_iterations=setting["iterations"],
        learning_rates=setting["learning_rate"], X_test=X_test, Y_test=Y_test,
        print_every=args.print_every or None, desc=name,
        progress=cli.show_progress(args), should_stop=stop,
        health_every=max(1, setting["iterations"] // HEALTH_POINTS),
    )  # fmt: skip

    def rerun(i, n):  # one init alone, through the driver's stopping rules
        return train_loop(
            unstack(params, i), X, Y, activations=activations, num_iterations=n,
            learning_rate=setting["learning_rate"], print_every=None,
            progress=False,
        )  # fmt: skip

    trained, kept, stops = common.apply_stopping_rules(
        result.params, result.costs, rerun
    )
    train_acc, test_acc = common.sweep_accuracies(
        result, trained, stops, (X, Y, X_test, Y_test), activations
    )
    finals = records.sweep_final_costs(
        result.run.final_cost, trained, stops, X, Y, activations
    )
    seconds = time.perf_counter() - start
    done = result.run.iterations_done
    models = {}
    for i, init in enumerate(inits):
        one = unstack(trained, i)
        spread = row_spread(one)
        final = float(finals[i])
        model_done = done if not stops[i] else stops[i]["iterations_done"]
        models[init] = {
            "network": name,
            "init": init,
            "label": INITS[init],
            "layer_dims": dims,
            "activations": list(activations),
            "learning_rate": setting["learning_rate"],
            "iterations": setting["iterations"],
            "iterations_done": model_done,
            "finished": done == setting["iterations"] and stops[i] is None,
            "diverged": stops[i] is not None,
            "stopped": stops[i],
            "initial_cost": float(kept[i][0]) if len(kept[i]) else None,
            "final_cost": final if np.isfinite(final) else None,
            "train": _accuracy(train_acc[i], Y.shape[1]),
            "test": _accuracy(test_acc[i], Y_test.shape[1]),
            "iterations_to_level": {"level": LEVEL,
                                    "iterations": iterations_to(kept[i], LEVEL)},
            "hidden_rows": spread,
            "hidden_units_identical": all(s["spread"] == 0 for s in spread),
            "dead_units": records.dead_units(one, X, activations),
            "health": model_health(result.run, i, model_done, activations),
            "costs": cost_checkpoints(kept[i], max(1, len(kept[i]) // 20)),
            "cost_curve": records.cost_curve(kept[i]),
            "seconds": seconds,
        }  # fmt: skip
    return models, kept


def model_health(run, i: int, done: int, activations) -> dict | None:
    """Model i's training-health record (``experiments.health_plot``), read
    inside the sweep's compiled run; a stopped model's readings end where its
    kept params are (iteration ``done``)."""
    if run.health is None:
        return None
    its = np.asarray(run.health_iterations)
    keep = its <= done
    one = Health(*(np.asarray(leaf)[i][keep] for leaf in run.health))
    return health_record(SimpleNamespace(health=one, health_iterations=its[keep]),
                         activations)  # fmt: skip


def _accuracy(fraction, m: int) -> dict | None:
    """An accuracy as exact counts (float32 fractions rounded to k / m)."""
    if not np.isfinite(fraction):
        return None  # an interrupted sweep is not scored
    return common.accuracy_record(int(round(float(fraction) * m)), m)


def _pct(record: dict | None) -> str:
    return "-" if record is None else f"{100 * record['accuracy']:.1f}"


def format_table(models: dict) -> str:
    """The markdown table: one row per (network, init)."""
    lines = [
        f"| network | init | J at start | final J | train acc (%) | test acc (%) | "
        f"iterations to J < {LEVEL:g} | hidden units identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in models.values():
        reach = m["iterations_to_level"]["iterations"]
        final = "-" if m["final_cost"] is None else f"{m['final_cost']:.4f}"
        first = "-" if m["initial_cost"] is None else f"{m['initial_cost']:.4g}"
        same = "yes" if m["hidden_units_identical"] else "no"
        if m["hidden_units_identical"] and all(
            s["size"] == 0 for s in m["hidden_rows"]
        ):
            same = "yes (all 0)"
        lines.append(
            f"| {m['network']} | {m['label']} | {first} | {final} | "
            f"{_pct(m['train'])} | {_pct(m['test'])} | "
            f"{'never' if reach is None else reach} | {same} |"
        )
    return "\n".join(lines)


TOP = 3.0  # the plot's highest J: starts far above it are named in the legend
STYLES = {"zeros": "--", "small": "-", "unit": "-", "large": "-", "xavier": "-",
          "he": "-"}  # fmt: skip


def plot_costs(path, curves: dict, settings: dict) -> None:
    """One panel per network: every init's cost curve, log y up to ``TOP`` (a
    start above it is named in the legend), and the J = 0.3 line."""
    plt = common.pyplot()
    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2))
    axes = np.atleast_1d(axes)
    for ax, network in zip(axes, names, strict=True):
        for init, costs in curves[network].items():
            c = np.asarray(costs, np.float64)
            label = INITS[init]
            if len(c) and c[0] > TOP:
                label += f" (J0 = {c[0]:.2g})"
            if len(c) == 1:
                label += ", diverged at once"
            ax.plot(np.arange(len(c)), c, lw=1.3, ls=STYLES.get(init, "-"),
                    label=label, marker="o" if len(c) == 1 else None,
                    zorder=3 if init == "zeros" else 2)  # fmt: skip
        s = settings[network]
        ax.axhline(LEVEL, color="k", lw=0.8, ls=":")
        ax.set(yscale="log", xlabel="iteration", ylabel="cost J")
        ax.set_ylim(top=TOP)
        ax.set_title(
            f"{network}: {s['layer_dims']}, {s['hidden']} hidden, "
            f"alpha = {s['learning_rate']:g}",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    common.save_figure(fig, path, dpi=90)


def symmetry_lines(models: dict) -> list[str]:
    """The W = 0 evidence, one line per network: the largest difference
    between any hidden unit's weights and the first unit's, after training."""
    lines = []
    for m in models.values():
        if m["init"] != "zeros":
            continue
        spread = max((s["spread"] for s in m["hidden_rows"]), default=0.0)
        size = max((s["size"] for s in m["hidden_rows"]), default=0.0)
        line = (
            f"{m['network']}, W = 0 after {m['iterations_done']} iterations: "
            f"max |W[l][i,:] - W[l][0,:]| over hidden layers = {spread:.1e} "
            f"(max |W[l]| = {size:.1e})"
        )
        health = m.get("health")
        if health and health["iterations"]:
            hidden = [row[:-1] for row in health["readings"]["symmetric"]]
            points = sum(all(row) for row in hidden)
            line += (
                f"; health: every hidden layer symmetric at {points} of "
                f"{len(hidden)} recorded points"
            )
        lines.append(line)
    return lines


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    dtype = common.set_dtype(args.dtype)
    settings = {}
    for network in args.networks:
        s = dict(NETWORKS[network])
        for flag in ("iterations", "learning_rate"):
            if getattr(args, flag) is not None:
                s[flag] = getattr(args, flag)
        settings[network] = s
    loaded = {n: study_data.load(n, args.data, dtype) for n in args.networks}
    run_dir = common.make_run_dir(args.out, NAME, args.overwrite)
    with common.RunStop() as stop:
        return run(args, settings, loaded, dtype, run_dir, stop, start)


def run(args, settings, loaded, dtype, run_dir, stop, start) -> dict:
    """Every network's sweep, stopping cleanly on a signal: the finished
    networks are kept, the interrupted one is recorded as such."""
    models, curves = {}, {}
    stop.phase = "training"
    for network in args.networks:
        if stop():
            break
        data, _ = loaded[network]
        found, kept = run_network(
            network, settings[network], args.inits, data, args, dtype, stop
        )
        curves[network] = dict(zip(args.inits, kept, strict=True))
        for init, m in found.items():
            models[f"{network}/{init}"] = m
        print(f"{network}: {len(found)} initializations in "
              f"{next(iter(found.values()))['seconds']:.1f} s", flush=True)  # fmt: skip
    table = format_table(models)
    symmetry = symmetry_lines(models)
    seconds = time.perf_counter() - start
    print(f"\n{table}\n")
    for line in symmetry:
        print(line)
    for name, m in models.items():
        for hint in (m.get("health") or {}).get("hints", []):
            print(f"{name}: {hint}")
    print(f"{seconds:.1f} s total")
    metrics = {
        "config": {**vars(args), "settings": settings, "level": LEVEL,
                   **common.environment()},
        "dataset": {n: about for n, (_, about) in loaded.items()},
        "models": models,
        "not_run": [n for n in args.networks if n not in curves],
        "table": table,
        "symmetry": symmetry,
        "seconds": seconds,
    }  # fmt: skip
    if not args.no_plots and not stop() and curves:
        stop.phase = "plots"
        with stop.abortable():
            plot_costs(run_dir / "costs.png", curves, settings)
            metrics["plots"] = ["costs.png"]
            for network in curves:
                found = {
                    m["label"]: m.get("health")
                    for m in models.values()
                    if m["network"] == network
                }
                name = f"health-{network}.png"
                title = f"{network}: training health for each initialization"
                if plot_health(run_dir / name, found, title):
                    metrics["plots"].append(name)
    return common.finish_run(run_dir, metrics, stop)


if __name__ == "__main__":
    common.run_cli(main)
