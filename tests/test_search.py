"""jaxnet.search: every candidate equals its standalone fit; splits; bad input.

Equality tolerance: 1e-12 relative in float64. A candidate runs the same
float64 operations vmapped as ``fit`` runs alone (only XLA's summation order
may differ), a few ulps (~1e-16) per step over at most 6 steps.
"""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.deep import model_cost
from jaxnet.params import init_params
from jaxnet.search import (
    Choice,
    LogUniform,
    Uniform,
    candidate_keys,
    dev_split,
    fit_settings,
    keep_best,
    kfold,
    load_checkpoint,
    sample,
    save_checkpoint,
    schedule,
    search,
)
from jaxnet.train import fit

RTOL = 1e-12
SPACE = {
    "learning_rate": LogUniform(0.05, 1.0),
    "lambd": LogUniform(0.01, 1.0),
    "keep_prob": Uniform(0.6, 1.0),
}
SETTINGS = dict(layer_dims=[3, 4, 1], output="sigmoid", dtype=jnp.float64)


def _data(m=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, m))
    Y = (X[:1] + X[1:2] > 0).astype(np.float64)
    return X, Y


@pytest.fixture(scope="module")
def halved():
    X, Y = _data()
    result = search(  # numpy and jax scalars are taken as Python numbers
        SPACE, X, Y, num_iterations=np.int64(4), num_candidates=np.int32(4),
        eta=jnp.float32(2), min_iterations=np.int64(2), max_models=np.int64(2),
        seed=np.int64(0), **SETTINGS,
    )  # fmt: skip
    return X, Y, result


def _standalone(result, i, X, Y, columns, iterations):
    """Candidate i trained alone by fit, as the search documents it."""
    rec = result.candidates[i]
    dims, acts, options = fit_settings(result.settings, rec)
    key_init, key_train = candidate_keys(result.settings["seed"], i)
    params = init_params(key_init, dims, "he", jnp.float64)
    trained, costs = fit(
        params, X[:, columns], Y[:, columns], activations=acts,
        num_iterations=iterations, key=key_train, **options,
    )  # fmt: skip
    return trained, np.asarray(costs), acts


def test_halving_candidates_equal_standalone_fit_also_when_dropped(halved):
    X, Y, result = halved
    # rungs: 4 candidates to 2 iterations, the best 2 of them to 4
    assert [(r["until"], r["candidates"]) for r in result.rungs] == [(2, 4), (4, 2)]
    # batches of 2 models, chunks of 2 steps: one compiled program for both rungs
    assert result.rungs[1]["compile_seconds"] == 0
    dropped = [rec["dropped_after_rung"] for rec in result.candidates]
    assert sorted(dropped, key=str) == [0, 0, None, None]
    sample_ids = [dropped.index(0), result.best]  # one halved away, the best
    train, dev = result.split.train[0], result.split.dev[0]
    for i in sample_ids:
        rec = result.candidates[i]
        params, costs, acts = _standalone(
            result, i, X, Y, train, rec["iterations_done"]
        )
        np.testing.assert_allclose(result.costs[i][0], costs, rtol=RTOL)
        dev_cost = float(model_cost(params, X[:, dev], Y[:, dev], acts))
        np.testing.assert_allclose(rec["dev_cost"], dev_cost, rtol=RTOL)
    best = result.candidates[result.best]
    assert best["dropped_after_rung"] is None and best["iterations_done"] == 4
    # params: the best's, fit alone (the loop's last): the search's best_params
    for a, b in zip(
        jax.tree.leaves(result.best_params), jax.tree.leaves(params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-15)
    # the survivors of a rung are the best by dev cost among those in it
    for r in (0,):
        reached = [c for c in result.candidates if len(c["dev_costs"]) > r]
        kept = [c for c in reached if len(c["dev_costs"]) > r + 1]
        cut = max(c["dev_costs"][r] for c in kept)
        assert all(c["dev_costs"][r] >= cut for c in reached if c not in kept)


def test_resume_from_a_rung_checkpoint_equals_the_unstopped_search(halved, tmp_path):
    X, Y, whole = halved
    done = []

    def on_rung(checkpoint, rung):
        done.append(checkpoint)

    stopped = search(
        SPACE, X, Y, num_iterations=4, num_candidates=4, eta=2, min_iterations=2,
        max_models=2,
        should_stop=lambda: bool(done), on_rung=on_rung, **SETTINGS,
    )  # fmt: skip
    assert stopped.interrupted and len(stopped.rungs) == 1
    save_checkpoint(tmp_path / "s.npz", stopped.checkpoint)
    resumed = search(
        SPACE, X, Y, num_iterations=4, num_candidates=4, eta=2, min_iterations=2,
        max_models=2,
        start=load_checkpoint(tmp_path / "s.npz"), **SETTINGS,
    )  # fmt: skip
    assert resumed.ranking == whole.ranking
    for a, b in zip(resumed.candidates, whole.candidates, strict=True):
        assert a["dev_costs"] == b["dev_costs"]  # bit for bit: the same programs
        np.testing.assert_array_equal(resumed.costs[a["id"]], whole.costs[b["id"]])


def test_kfold_trains_folds_and_candidates_in_one_program_exactly():
    X, Y = _data(m=31)  # classes of 14 and 17: folds of equal size, leftovers train
    space = {"learning_rate": LogUniform(0.05, 0.5), "lambd": LogUniform(0.1, 1.0)}
    result = search(
        space, X, Y, num_iterations=3, num_candidates=2, folds=np.int64(2),
        batch_size=8, optimizer="adam", max_models=2,  # one candidate per program
        **SETTINGS,
    )  # fmt: skip
    split = result.split
    assert split.train.shape == (2, 16) and len(result.rungs) == 1  # 7 + 8 in dev
    for f in range(2):
        assert not set(split.train[f]) & set(split.dev[f])
    for i, folds in ((0, range(2)),):  # candidate 0 on each fold
        devs = []
        for f in folds:
            params, costs, acts = _standalone(result, i, X, Y, split.train[f], 3)
            np.testing.assert_allclose(result.costs[i][f], costs, rtol=RTOL)
            dev = split.dev[f]
            devs.append(float(model_cost(params, X[:, dev], Y[:, dev], acts)))
        if i == 0:  # the dev cost: the mean of the folds' dev costs
            np.testing.assert_allclose(
                result.candidates[i]["dev_cost"], np.mean(devs), rtol=RTOL
            )


def test_schedule_halves_down_to_the_full_budget():
    rungs = schedule(128, 2, 1, 8)
    assert rungs == [(1, 128), (2, 64), (4, 32), (8, 16)]
    spent = sum((u - b) * n for (u, n), b in zip(rungs, [0, 1, 2, 4], strict=True))
    assert spent == 320  # 40 full runs of 8 for 128 candidates
    assert schedule(5, None, 1, 7) == [(7, 5)]
    assert schedule(2, 3, 1, 9) == [(1, 2), (9, 1)]


def test_keep_best_puts_nan_and_inf_last():
    kept = keep_best(np.array([0.5, np.nan, 0.1, np.inf, 0.3]), 3)
    assert kept.tolist() == [2, 4, 0]


def test_sample_is_seeded_and_inside_the_space():
    a = sample(SPACE, 50, seed=3)
    assert a == sample(SPACE, 50, seed=3) and a != sample(SPACE, 50, seed=4)
    for c in a:
        assert 0.05 <= c["learning_rate"] <= 1.0 and 0.6 <= c["keep_prob"] <= 1.0
    logs = np.log10([c["learning_rate"] for c in a])
    assert np.mean(logs < np.log10(0.05) + 0.5 * np.log10(20)) > 0.3  # log-spread
    grid = sample({"lambd": LogUniform(0.01, 1.0), "hidden": Choice(["relu", "tanh"])},
                  sampler="grid", grid_points=3)  # fmt: skip
    assert len(grid) == 6
    np.testing.assert_allclose(sorted({c["lambd"] for c in grid}), [0.01, 0.1, 1.0])


def test_splits_are_stratified_disjoint_and_seeded():
    labels = np.array([0] * 30 + [1] * 10)
    s = dev_split(labels, 0.2, seed=1)
    assert set(s.train[0]) | set(s.dev[0]) == set(range(40))
    assert np.bincount(labels[s.dev[0]]).tolist() == [6, 2]
    assert np.array_equal(s.dev, dev_split(labels, 0.2, seed=1).dev)
    f = kfold(labels, 4, seed=0)
    assert f.dev.shape == (4, 9) and f.train.shape == (4, 31)  # 7 + 2 per fold
    assert len(set(f.dev.ravel())) == 36  # each example in at most one dev set


def _run(**overrides):
    X, Y = _data()
    kwargs = dict(num_iterations=4, num_candidates=4, **SETTINGS)
    kwargs.update(overrides)
    space = kwargs.pop("space", SPACE)
    return search(space, X, Y, **kwargs)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(space={}), "search space is empty"),
        (dict(space={"learning_rate": LogUniform(0.1, 0.01)}), "inverted"),
        (dict(space={"lambd": LogUniform(0.0, 1.0)}), "needs 0 < low"),
        (dict(space={"learning_rate": LogUniform(-1.0, 1.0)}), "needs 0 < low"),
        (dict(space={"keep_prob": Choice([])}), "Choice\\(\\) has no values"),
        (dict(space={"keep_prob": Uniform(0.0, 1.0)}), "keep_prob must be in"),
        (dict(eta=1), "eta must be a number > 1"),
        (dict(eta=0.5), "eta must be a number > 1"),
        (dict(eta=True), "eta must be a number > 1"),
        (dict(eta=2, min_iterations=5), "smaller than one chunk"),
        (
            dict(folds=25),
            "folds = 25 is larger than the 1[78] examples of class [01]: use at most",
        ),
        (dict(dev_fraction=0.01), "leaves no dev examples"),
        (dict(dev_fraction=1.0), "dev_fraction must be in \\(0, 1\\)"),
    ],
)
def test_bad_input_is_one_line_before_anything_compiles(
    overrides, message, monkeypatch
):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr("jaxnet.search.run.drive", no_training)
    with pytest.raises(ValueError, match=message) as info:
        _run(**overrides)
    assert "\n" not in str(info.value)


def test_a_shape_group_too_large_for_memory_is_refused_first(monkeypatch):
    monkeypatch.setattr("jaxnet.search.run.drive", lambda *a, **k: 1 / 0)
    monkeypatch.setenv("JAXNET_MEMORY_LIMIT", str(200_000))
    space = {"width": Choice([2, 4000])}  # the small group fits, the wide one not
    with pytest.raises(ValueError, match="shape group width=4000 .* needs about"):
        _run(space=space, sampler="grid", num_candidates=None)


def test_command_line_searches_digits_on_a_dev_split(data_root, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.search", "--dataset", "digits",
         "--data", str(data_root), "--train-size", "200", "--candidates", "4",
         "--iterations", "2", "--max-models", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["search"]["split"] == {
        "kind": "dev", "folds": 1, "seed": 0, "train_size": 160, "dev_size": 40
    }  # fmt: skip
    rungs = metrics["search"]["rungs"]
    assert [r["candidates"] for r in rungs] == [4, 2]
    assert rungs[1]["compile_seconds"] == 0  # batches of 2: one program for both
    chosen = metrics["models"]["chosen"]
    assert chosen["id"] == metrics["search"]["ranking"][0]
    assert 0 <= chosen["test_accuracy"] <= 1 and "scored once" in proc.stdout
    # retrained alone by fit on its split: the search's params, float32 rounding
    assert chosen["retrain_relative_difference"] < 1e-4
    assert (out / "search.png").is_file() and (out / "search.npz").is_file()


def test_a_diverged_candidate_is_marked_and_ranked_last():
    X, Y = _data()
    result = search(
        {"learning_rate": Choice([0.1, 1e4])}, X, Y, num_iterations=3,
        sampler="grid", **SETTINGS,
    )  # fmt: skip
    good, bad = result.candidates
    assert bad["diverged"] and bad["dev_cost"] is None  # jaxnet.stopping's rules
    assert not good["diverged"] and np.isfinite(good["dev_cost"])
    assert result.ranking == [0, 1]
