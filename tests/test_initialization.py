"""experiments.initialization: W = 0 symmetry, the table, the command line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import initialization
from jaxnet.params import init_params

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--no-progress", "--no-plots"]
INITS = ["zeros", "small", "he"]


@pytest.fixture(scope="module")
def flower_run(tmp_path_factory):
    """Three inits on the shallow flower network, 300 iterations, in process."""
    out = tmp_path_factory.mktemp("init") / "run"
    metrics = initialization.main(
        ["--networks", "flower_shallow", "--inits", ",".join(INITS),
         "--iterations", "300", "--out", str(out), "--no-progress"]
    )  # fmt: skip
    return out, metrics


def test_zero_init_keeps_every_hidden_unit_identical(flower_run):
    _, metrics = flower_run
    for network in ["flower_shallow"]:
        zero = metrics["models"][f"{network}/zeros"]
        # After 300 updates every hidden row of [W[l] | b[l]] equals the first
        # exactly (spread 0.0, not merely small): the units never split.
        assert zero["hidden_units_identical"]
        assert all(s["spread"] == 0.0 for s in zero["hidden_rows"])
        assert zero["iterations_done"] == 300
        # tanh(0) = 0: the hidden layers stay exactly 0 and only b[L] learns,
        # so the network predicts one class: train accuracy is the class share.
        assert all(s["size"] == 0.0 for s in zero["hidden_rows"])
        assert zero["train"]["accuracy"] == 0.5
        # Any random start breaks the symmetry.
        for init in INITS[1:]:
            model = metrics["models"][f"{network}/{init}"]
            assert not model["hidden_units_identical"], init
            assert min(s["spread"] for s in model["hidden_rows"]) > 0
    assert any("W = 0" in line and "0.0e+00" in line for line in metrics["symmetry"])


def test_health_is_read_inside_the_sweep(flower_run):
    """The sweep's readings (jaxnet.health, recorded in the compiled chunks):
    W = 0 is symmetric at every recorded point, with the lecture's hint; the
    random starts never are."""
    out, metrics = flower_run
    zero = metrics["models"]["flower_shallow/zeros"]["health"]
    its = zero["iterations"]
    assert its[0] == 0 and its == sorted(its) and its[-1] <= 300 and len(its) > 40
    assert all(row[0] for row in zero["readings"]["symmetric"])  # hidden layer 1
    assert any("symmetric hidden units" in h for h in zero["hints"])
    assert "symmetric at" in metrics["symmetry"][0]
    for init in INITS[1:]:
        health = metrics["models"][f"flower_shallow/{init}"]["health"]
        assert health["iterations"] == its
        assert not any(row[0] for row in health["readings"]["symmetric"])
        assert not any("symmetric" in h for h in health["hints"])
        # one tanh hidden layer: a saturation fraction, no dead-ReLU reading
        assert all(0 <= row[0] <= 1 for row in health["readings"]["saturated"])
        assert all(row[0] is None for row in health["readings"]["dead"])
    assert (out / "health-flower_shallow.png").stat().st_size > 10_000


def test_row_spread_sees_one_different_unit():
    params = init_params(jax.random.key(0), [3, 4, 1], "zeros", jnp.float64)
    assert initialization.row_spread(params)[0]["spread"] == 0.0
    params[0]["W"] = params[0]["W"].at[2, 1].set(1e-12)
    assert initialization.row_spread(params)[0]["spread"] == 1e-12
    params[0]["b"] = params[0]["b"].at[3, 0].set(-0.5)
    assert initialization.row_spread(params)[0]["spread"] == 0.5


def test_table_fields_and_record(flower_run):
    out, metrics = flower_run
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"config", "dataset", "models", "table", "symmetry"}
    assert saved["table"] == metrics["table"]
    names = [f"flower_shallow/{i}" for i in INITS]
    assert list(saved["models"]) == names
    rows = saved["table"].splitlines()
    assert "final J" in rows[0] and "test acc" in rows[0]
    assert "iterations to J < 0.3" in rows[0]
    assert len(rows) == 2 + len(names)
    for name, row in zip(names, rows[2:], strict=True):
        m = saved["models"][name]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:2] == [m["network"], m["label"]]
        assert float(cells[3]) == pytest.approx(m["final_cost"], abs=5e-5)
        assert float(cells[5]) == pytest.approx(100 * m["test"]["accuracy"], abs=0.05)
        reach = m["iterations_to_level"]["iterations"]
        assert cells[6] == ("never" if reach is None else str(reach))
        if reach is not None:  # the first iteration below the level
            J = m["cost_curve"]["J"]
            assert J[reach] < 0.3 and all(j >= 0.3 for j in J[:reach])
        assert m["test"]["total"] == 400 and m["train"]["total"] == 400
    # W = 0 never gets below the level; the shallow He start does in 300 steps.
    zero = saved["models"]["flower_shallow/zeros"]
    assert zero["iterations_to_level"]["iterations"] is None
    he = saved["models"]["flower_shallow/he"]["iterations_to_level"]["iterations"]
    assert he is not None
    assert (out / "costs.png").stat().st_size > 10_000


def test_scales_are_the_same_draw_scaled():
    key = jax.random.key(3)
    dims = [5, 4, 1]
    small, unit, large = (
        init_params(key, dims, m, jnp.float64) for m in ("small", "unit", "large")
    )
    for s, u, g in zip(small, unit, large, strict=True):
        np.testing.assert_allclose(g["W"], 10 * u["W"], rtol=1e-15)
        np.testing.assert_allclose(u["W"], 100 * s["W"], rtol=1e-14)
    stacked = initialization.stacked_inits(key, dims, ["zeros", "unit"], jnp.float64)
    assert stacked[0]["W"].shape == (2, 4, 5)
    np.testing.assert_array_equal(stacked[0]["W"][1], unit[0]["W"])


def test_iterations_to_level():
    assert initialization.iterations_to(np.array([0.7, 0.5, 0.29, 0.1]), 0.3) == 2
    assert initialization.iterations_to(np.array([0.7, 0.3, 0.3]), 0.3) is None


def test_command_line_stops_on_ctrl_c(tmp_path):
    """One real process: trains, prints, and on SIGINT records and exits 130."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "experiments.initialization", "--networks",
            "flower_shallow,flower", "--inits", "zeros,he", "--iterations",
            "2000000", "--print-every", "1000", *QUIET, "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        line = proc.stdout.readline()  # the first printed cost: training runs
        assert line, "no output"
        assert time.monotonic() < deadline
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, line + output
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["interrupted"] and saved["signal"] == "SIGINT"
    assert saved["not_run"] == ["flower"]  # the second network never started
    model = saved["models"]["flower_shallow/he"]
    assert 0 < model["iterations_done"] < 2_000_000 and not model["finished"]
