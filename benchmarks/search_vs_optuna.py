"""Digits: vmapped search with halving vs the same candidates one at a time, vs Optuna.

Question (issue 22): on the digits (``experiments.search``'s settings: [784,
64, 10] relu/softmax, Adam, batches of 128, a 20 % dev split of the training
digits), how long does successive halving over 128 random candidates (learning
rate, lambd, keep_prob) take as vmapped shape groups, and

1. how long do the same candidates take trained one at a time with
   ``jaxnet.train.fit``, each to the epoch where halving dropped it (the same
   work, the same numbers: ``jaxnet.search``'s equality), in the same run;
2. what dev accuracy does Optuna (TPE sampler, SuccessiveHalvingPruner; the
   optional ``optuna`` extra) reach on the same space with the same budget of
   candidate-epochs, each trial trained epoch by epoch through jaxnet's driver,
   and when?

    python -m benchmarks.search_vs_optuna [--train-size 2000] [--candidates 128]
        [--epochs 8] [--no-optuna] [--out PATH.json]

Times are wall seconds with compilation included (what a user waits for), on
whatever machine runs it; the 1-minute load average is printed beside them.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.digits import NUM_CLASSES, NUM_TRAIN, SPLIT_SEED
from experiments.search import DEFAULTS
from jaxnet.boundary import prepare
from jaxnet.data import load_mnist_t10k, split_digits
from jaxnet.driver import drive
from jaxnet.labels import one_hot
from jaxnet.params import init_params
from jaxnet.search import candidate_keys, fit_settings, search
from jaxnet.train import accuracy, fit


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.search_vs_optuna")
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--candidates", type=int, default=128)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--no-optuna", action="store_true")
    p.add_argument("--no-one-at-a-time", action="store_true")
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    return p


def load(train_size):
    images, labels = load_mnist_t10k(None)
    X, y, _, _ = split_digits(images, labels, jax.random.key(SPLIT_SEED), NUM_TRAIN)
    X, y = np.asarray(X[:, :train_size]), np.asarray(y[:train_size])
    return X, np.asarray(one_hot(y, NUM_CLASSES, dtype=jnp.float32))


def one_at_a_time(result, X, Y) -> dict:
    """Every candidate alone with fit, to the epoch halving took it to."""
    train, dev = result.split.train[0], result.split.dev[0]
    start = time.perf_counter()
    best, worst_gap = 0.0, 0.0
    for rec in result.candidates:
        dims, acts, options = fit_settings(result.settings, rec)
        key_init, key_train = candidate_keys(result.settings["seed"], rec["id"])
        params = init_params(key_init, dims, "he", jnp.float32)
        params, _ = fit(params, X[:, train], Y[:, train], activations=acts,
                        num_iterations=rec["iterations_done"], key=key_train,
                        **options)  # fmt: skip
        acc = float(accuracy(params, X[:, dev], Y[:, dev], acts))
        best = max(best, acc)
        worst_gap = max(worst_gap, abs(acc - rec["dev_accuracy"]))
    return {"seconds": time.perf_counter() - start, "best_dev_accuracy": best,
            "max_dev_accuracy_difference_to_search": worst_gap}  # fmt: skip


def run_optuna(X, Y, split, space, budget: int, epochs: int, seed: int) -> dict:
    """TPE + successive-halving pruner; stops when ``budget`` candidate-epochs
    are spent. Each trial: prepare once, then drive one epoch at a time."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = DEFAULTS["digits"]
    train, dev = split.train[0], split.dev[0]
    X_t, Y_t, X_d, Y_d = X[:, train], Y[:, train], X[:, dev], Y[:, dev]
    acts = ("relu", "softmax")
    spent = {"epochs": 0}
    trace = []
    start = time.perf_counter()

    def objective(trial):
        lr = trial.suggest_float("learning_rate", *space["learning_rate"], log=True)
        lambd = trial.suggest_float("lambd", *space["lambd"], log=True)
        keep = trial.suggest_float("keep_prob", *space["keep_prob"])
        key_init, key_train = candidate_keys(seed, 10_000 + trial.number)
        params = init_params(key_init, d["layer_dims"], "he", jnp.float32)
        run = prepare(params, X_t, Y_t, activations=acts, learning_rate=lr,
                      lambd=lambd, keep_prob=keep, key=key_train,
                      optimizer=d["optimizer"], batch_size=d["batch_size"],
                      first_layer="dense")  # fmt: skip
        state, acc = run.state, 0.0
        for e in range(epochs):
            if spent["epochs"] >= budget:
                break
            result = drive(run.config, state, run.hp, run.data, run.Y,
                           num_iterations=e + 1, start_iteration=e,
                           single_chunk=True, check=False)  # fmt: skip
            state, spent["epochs"] = result.state, spent["epochs"] + 1
            acc = float(accuracy(state.params, X_d, Y_d, acts))
            trace.append((time.perf_counter() - start, spent["epochs"], acc))
            trial.report(acc, e)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(),
    )  # fmt: skip
    while spent["epochs"] < budget:
        study.optimize(objective, n_trials=1)
    best = max(acc for _, _, acc in trace)
    return {"seconds": time.perf_counter() - start, "trials": len(study.trials),
            "best_dev_accuracy": best, "candidate_epochs": spent["epochs"],
            "trace": trace[:: max(1, len(trace) // 50)],
            "optuna_version": optuna.__version__}  # fmt: skip


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    X, Y = load(args.train_size)
    d = DEFAULTS["digits"]
    load_avg = os.getloadavg()[0]
    start = time.perf_counter()
    result = search(
        d["space"], X, Y, layer_dims=d["layer_dims"], output="softmax",
        num_iterations=args.epochs, num_candidates=args.candidates, eta=2,
        min_iterations=1, optimizer=d["optimizer"], batch_size=d["batch_size"],
    )  # fmt: skip
    vmapped = time.perf_counter() - start
    epochs = sum(c["iterations_done"] for c in result.candidates)
    best = result.candidates[result.best]
    out = {
        "load_average_1min_at_start": load_avg,
        "train_size": args.train_size, "candidates": args.candidates,
        "epochs": args.epochs, "candidate_epochs": epochs,
        "search": {"seconds": vmapped, "best_dev_accuracy": best["dev_accuracy"],
                   "best": best["values"], "rungs": result.rungs},
    }  # fmt: skip
    print(f"vmapped search with halving: {vmapped:.1f} s, {epochs} candidate-epochs,"
          f" best dev accuracy {100 * best['dev_accuracy']:.2f} % (load "
          f"{load_avg:.1f})")  # fmt: skip
    if not args.no_one_at_a_time:
        alone = one_at_a_time(result, X, Y)
        out["one_at_a_time"] = alone
        print(f"same candidates one at a time with fit: {alone['seconds']:.1f} s "
              f"(speed-up {alone['seconds'] / vmapped:.1f}x)")  # fmt: skip
    if not args.no_optuna:
        space = {"learning_rate": tuple(d["space"]["learning_rate"]),
                 "lambd": tuple(d["space"]["lambd"]),
                 "keep_prob": tuple(d["space"]["keep_prob"])}  # fmt: skip
        opt = run_optuna(X, Y, result.split, space, epochs, args.epochs, 0)
        out["optuna"] = opt
        print(f"optuna TPE + halving pruner: {opt['seconds']:.1f} s, "
              f"{opt['trials']} trials, best dev accuracy "
              f"{100 * opt['best_dev_accuracy']:.2f} %")  # fmt: skip
    out["load_average_1min_at_end"] = os.getloadavg()[0]
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2, default=str)
    return out


if __name__ == "__main__":
    main()
