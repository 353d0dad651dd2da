"""jaxnet.decision and experiments.planar: the grid, snapshots, the GIF."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxnet
from experiments import planar
from jaxnet.data import planar_flower
from jaxnet.decision import grid, snapshot_iterations, snapshot_trainer
from jaxnet.deep import predict_proba

ROOT = Path(__file__).resolve().parents[1]
ACTS = ("tanh", "sigmoid")


def test_grid_covers_the_data_in_contourf_layout():
    X = jnp.array([[-1.0, 3.0, 0.0], [2.0, 5.0, 4.0]])
    g = grid(X, resolution=4, margin=0.5)
    assert g.points.shape == (2, 16) and g.x.shape == g.y.shape == (4,)
    np.testing.assert_allclose([g.x[0], g.x[-1]], [-1.5, 3.5])
    np.testing.assert_allclose([g.y[0], g.y[-1]], [1.5, 5.5])
    # column i * r + j is (x[j], y[i]): reshape(r, r) has row i = y[i].
    i, j = 2, 1
    np.testing.assert_array_equal(g.points[:, i * 4 + j], [g.x[j], g.y[i]])


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(X=np.zeros((3, 5))), "must be \\(2, m\\)"),
        (dict(X=np.zeros((2, 0))), "must be \\(2, m\\)"),
        (dict(X=np.array([[0.0, np.nan], [1.0, 2.0]])), "non-finite"),
        (dict(resolution=1), "resolution must be an integer >= 2"),
        (dict(margin=-1.0), "margin must be a finite number >= 0"),
    ],
)
def test_grid_refuses_bad_input_in_one_line(bad, match):
    args = {"X": np.zeros((2, 3)), "resolution": 5, "margin": 1.0, **bad}
    with pytest.raises(ValueError, match=match):
        grid(args["X"], args["resolution"], args["margin"])


def test_snapshot_iterations():
    assert snapshot_iterations(10, 4).tolist() == [0, 4, 8]
    assert snapshot_iterations(10, [0, 3, 10]).tolist() == [0, 3, 10]
    for bad in ([], [3, 3], [0, 11], [-1, 2], [0.5, 2]):
        with pytest.raises(ValueError, match="strictly increasing"):
            snapshot_iterations(10, bad)
    with pytest.raises(ValueError, match="every"):
        snapshot_iterations(10, 0)


def test_snapshots_are_the_outputs_of_params_trained_that_far():
    """Snapshot i equals A[L] on the points of the params trained its[i]
    iterations: exactly (0.0) against jaxnet.trainer, the same step compiled;
    against fit's chunked driver to rounding (float64, atol 1e-12: values in
    (0, 1) after 40 steps; measured 0 to ~1e-15)."""
    dtype = jnp.float64
    X, Y = planar_flower(jax.random.key(0), 60, dtype=dtype)
    params = jaxnet.init_params(jax.random.key(1), [2, 3, 1], "xavier", dtype)
    points = grid(X, 7).points
    its = [0, 1, 17, 40]
    out = jax.jit(snapshot_trainer(ACTS, 45, its, learning_rate=1.2))(
        params, X, Y, points
    )
    assert out.snapshots.shape == (4, 1, 49) and out.costs.shape == (45,)
    np.testing.assert_array_equal(out.snapshots[0], predict_proba(params, points, ACTS))
    trained, costs = jax.jit(jaxnet.trainer(ACTS, 17, learning_rate=1.2))(params, X, Y)
    np.testing.assert_array_equal(
        out.snapshots[2], predict_proba(trained, points, ACTS)
    )
    np.testing.assert_array_equal(out.costs[:17], costs)
    fitted, fit_costs = jaxnet.fit(
        params, X, Y, activations=ACTS, num_iterations=40, learning_rate=1.2
    )
    np.testing.assert_allclose(
        out.snapshots[3], predict_proba(fitted, points, ACTS), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(out.costs[:40], fit_costs, rtol=0, atol=1e-12)
    # The 5 iterations after the last snapshot are trained too (fit reuses
    # its compiled chunk: no new program).
    fitted, _ = jaxnet.fit(
        params, X, Y, activations=ACTS, num_iterations=45, learning_rate=1.2
    )
    leaves = zip(jax.tree.leaves(out.params), jax.tree.leaves(fitted), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_snapshot_trainer_refuses_a_bad_schedule_or_option():
    with pytest.raises(ValueError, match="strictly increasing"):
        snapshot_trainer(ACTS, 10, [0, 20])
    with pytest.raises(ValueError, match="mesh"):
        snapshot_trainer(ACTS, 10, 2, first_layer="gram")
    with pytest.raises(ValueError, match="learning_rate"):
        snapshot_trainer(ACTS, 10, 2, learning_rate=-1.0)


def test_course_flower_reproduces_the_course(tmp_path):
    """The course's data and init (float64): n_h = 3 reaches its published
    90.75 % train accuracy exactly (363 of 400)."""
    X, Y = planar.course_flower()
    X2, _ = planar.course_flower()
    np.testing.assert_array_equal(X, X2)  # a private stream: the same draw
    assert X.shape == (2, 400) and Y.sum() == 200
    params = jaxnet.course_init_params([2, 3, 1], planar.COURSE_INIT_SEED, "0.01")
    trained, _ = jaxnet.fit(
        params, X, Y, activations=ACTS, num_iterations=5000, learning_rate=1.2
    )
    pct, record = planar.percent(trained, jnp.asarray(X), jnp.asarray(Y))
    assert record["correct"] == 363 and pct == planar.COURSE_ACCURACY[3]


def test_course_init_needs_float64(capsys):
    with pytest.raises(SystemExit) as info:
        planar.main(["--course-init", "--dtype", "float32"])
    assert info.value.code == 2
    assert "--dtype float64" in capsys.readouterr().err


def test_command_line_writes_the_grid_and_a_gif_of_snapshots(tmp_path):
    """One real process: a size trained, its boundary grid and the film."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.planar", "--hidden-sizes", "3",
         "--iterations", "40", "--frames", "6", "--animate", "3",
         "--no-progress", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| n_h |" in proc.stdout and f"run folder: {out}" in proc.stdout
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"config", "dataset", "models", "table", "animation"}
    assert list(saved["models"]) == ["n_h=3"]
    m = saved["models"]["n_h=3"]
    assert m["iterations_done"] == 40 and m["train"]["total"] == 400
    film = saved["animation"]
    its = planar.film_iterations(40, 6).tolist()
    assert film["iterations"] == its and its[0] == 0 and its[-1] == 40
    # The film's network is the grid panel's (float64: to rounding).
    assert film["max_param_difference_vs_grid"] < 1e-12
    assert film["train_accuracy"][-1] == pytest.approx(100 * m["train_accuracy"])
    with Image.open(out / "boundary.gif") as gif:
        assert gif.n_frames == len(its) == film["frames"]
        assert gif.size == (4 * planar.GIF_DPI, 4 * planar.GIF_DPI)
    assert (out / "boundary.gif").stat().st_size < 1_000_000
    with Image.open(out / "boundaries.png") as png:
        assert png.size[0] > 300
    assert saved["plots"] == ["boundaries.png", "boundary.gif"]


def test_film_iterations():
    assert planar.film_iterations(3, 3).tolist() == [0, 3]
    its = planar.film_iterations(5000, 30)
    assert len(its) == 30 and its[0] == 0 and its[1] == 10 and its[-1] == 5000
    assert np.all(np.diff(its) > 0)
