"""The playground's web API (Starlette's TestClient, in process), its safety
rules and its command line. The real-browser test is test_playground_browser.

Training runs here are tiny (a few hundred iterations of [2, 4, 1] or [2, 8,
8, 1]) so the whole file stays within a few seconds of compiled work.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from experiments.playground import __main__ as cli
from experiments.playground.app import MAX_JSON_BYTES, create_app
from experiments.playground.datasets import MAX_UPLOAD_BYTES
from experiments.playground.session import MAX_SESSIONS
from experiments.playground.settings import MAX_HIDDEN_LAYERS, MAX_WIDTH
from experiments.playground.snapshot import GRID
from jaxnet.activations import ACTIVATIONS
from jaxnet.checkpoint import load_checkpoint
from jaxnet.optimizers import OPTIMIZERS
from jaxnet.params import INIT_SCALES

SMALL = {"hidden": "4", "activations": "tanh", "points": 60, "iterations": 200}
# The tests share these two networks and m = 60 (48 to train), so that few
# programs compile.
SOFTMAX = {"output": "softmax", "hidden": "5,3", "activations": "relu,leaky_relu"}
FINISHED = ("done", "paused", "diverged", "error")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def new_session(client) -> str:
    answer = client.post("/api/session")
    assert answer.status_code == 200
    return answer.json()["session"]


def configure(client, sid, **settings):
    return client.post(f"/api/configure?session={sid}", json=settings)


def act(client, sid, action):
    answer = client.post(f"/api/control?session={sid}", json={"action": action})
    assert answer.status_code == 200, answer.text
    return answer.json()


def state(client, sid) -> dict:
    return client.get(f"/api/state?session={sid}").json()


def wait_for(client, sid, statuses=FINISHED, timeout=30.0) -> dict:
    """The latest update once its status is one of ``statuses``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        latest = state(client, sid)
        if latest["status"] in statuses:
            return latest
        time.sleep(0.02)
    raise AssertionError(f"status still {latest['status']!r} after {timeout} s")


def test_options_come_from_the_library_tables(client):
    options = client.get("/api/options").json()
    assert options["activations"] == list(ACTIVATIONS)
    assert options["inits"] == list(INIT_SCALES)
    assert options["optimizers"] == list(OPTIMIZERS)
    assert options["outputs"] == ["sigmoid", "softmax"]
    assert options["caps"]["width"] == MAX_WIDTH


# Every control, one valid value each: the answer describes the run built.
CONTROLS = [
    ({"data": "flower", "init": "zeros"}, [2, 4, 1], 2),
    ({"data": "blobs", "init": "small", "optimizer": "adam"}, [2, 4, 1], 2),
    (
        {"data": "spirals", "classes": 3, "init": "he", **SOFTMAX},
        [2, 5, 3, 3], 3,
    ),
    ({"lambd": 0.5, "keep_prob": 0.8, "batch_size": 16, "grad": "autodiff",
      "learning_rate": "0.03", "seed": "7"}, [2, 4, 1], 2),
    ({"hidden": "", "activations": ""}, [2, 1], 2),  # logistic regression
]  # fmt: skip


@pytest.mark.parametrize(("settings", "dims", "classes"), CONTROLS)
def test_every_control_configures_a_run(client, settings, dims, classes):
    sid = new_session(client)
    answer = configure(client, sid, **{**SMALL, **settings})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["layer_dims"] == dims and body["classes"] == classes
    for key, value in settings.items():
        shown = body["settings"][key]
        if key in ("hidden", "activations"):
            shown = ",".join(map(str, shown))
        assert str(shown) == str(value)
    assert len(body["points"]) >= 0.9 * SMALL["points"]
    first = state(client, sid)  # the initial boundary is there at once
    assert first["status"] == "ready"
    assert len(base64.b64decode(first["boundary"]["cls"])) == GRID * GRID


BAD = [
    ({"learning_rate": -1}, "learning_rate", "> 0"),
    ({"learning_rate": "abc"}, "learning_rate", "number"),
    ({"learning_rate": 1e39}, "learning_rate", "float32"),
    ({"keep_prob": 0}, "keep_prob", "(0, 1]"),
    ({"lambd": "nan"}, "lambd", "finite"),
    ({"activations": "tanh", "hidden": "4", "output": "relu"}, "output", "sigmoid"),
    ({"activations": "swish"}, "activation of layer 1", "tanh"),
    ({"hidden": "4,4", "activations": "tanh"}, "activations", "one activation"),
    ({"hidden": ",".join(["2"] * (MAX_HIDDEN_LAYERS + 1))}, "hidden", "at most"),
    ({"hidden": str(MAX_WIDTH + 1)}, "hidden layer 1 width", f"to {MAX_WIDTH}"),
    ({"hidden": "0"}, "hidden layer 1 width", "from 1"),
    ({"hidden": "2.5"}, "hidden layer 1 width", "whole number"),
    ({"points": 5}, "points", "from 20"),
    ({"points": 10**9}, "points", "2000"),
    ({"iterations": 0}, "iterations", "from 1"),
    ({"iterations": 10**7}, "iterations", "1000000"),
    ({"data": "mnist"}, "data", "flower"),
    ({"data": "spirals", "classes": 6}, "classes", "to 5"),
    ({"data": "spirals", "classes": 3}, "output", "softmax"),
    ({"batch_size": 100}, "batch_size", "training examples"),
    ({"init": "ones"}, "init", "xavier"),
    ({"optimizer": "lbfgs"}, "optimizer", "adam"),
    ({"seed": -1}, "seed", "from 0"),
    ({"colour": "red"}, "colour", "unknown setting"),
    ({"data": "csv"}, "csv", "no CSV uploaded"),
]


@pytest.mark.parametrize(("settings", "field", "words"), BAD)
def test_bad_settings_get_one_clear_line_and_the_server_goes_on(
    client, settings, field, words
):
    sid = new_session(client)
    answer = configure(client, sid, **{**SMALL, **settings})
    assert answer.status_code == 400
    body = answer.json()
    assert body["field"] == field and words in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    assert configure(client, sid, **SMALL).status_code == 200  # still serving


def test_malformed_and_oversized_requests(client):
    sid = new_session(client)
    url = f"/api/configure?session={sid}"
    answer = client.post(url, content=b"{not json")
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
    assert client.post(url, content=b"[1, 2]").status_code == 400
    big = json.dumps({"seed": "1" + " " * MAX_JSON_BYTES}).encode()
    assert client.post(url, content=big).status_code == 413
    answer = client.post(f"/api/control?session={sid}", json={"action": "fly"})
    assert answer.status_code == 400 and "start" in answer.json()["error"]
    for path in ("/api/state", "/api/code", "/api/checkpoint"):
        answer = client.get(f"{path}?session=nope")
        assert answer.status_code == 404 and "reload" in answer.json()["error"]


def csv_text(rows=60, classes=2) -> str:
    rng = np.random.default_rng(0)
    lines = ["x1,x2,label"]
    for i in range(rows):
        k = i % classes
        x, y = rng.normal(size=2) + 3 * k
        lines.append(f"{x:.3f},{y * 100:.3f},{k}")
    return "\n".join(lines) + "\n"


CSV_BAD = [
    ("x1,x2\n" + "1,2\n" * 30, "column(s)"),
    (csv_text().replace("\n1", "\nabc", 1) + "", "not a finite number"),
    (csv_text().replace(",1\n", ",2\n"), "every class"),
    (csv_text(classes=2).replace(",1\n", ",0.5\n"), "whole numbers"),
    ("x1,x2,label\n1,2,0\n3,4,1\n", "data rows"),
    (csv_text(classes=6), "K <= 5"),
    ("1,inf,0\n" + csv_text()[12:], "finite"),
]


@pytest.mark.parametrize(("text", "words"), CSV_BAD)
def test_bad_csv_uploads_are_refused_with_the_row(client, text, words):
    sid = new_session(client)
    answer = client.post(f"/api/upload?session={sid}", content=text.encode())
    assert answer.status_code == 400 and answer.json()["field"] == "csv"
    assert words in answer.json()["error"], answer.json()


def test_csv_upload_limits_and_a_good_file_trains(client):
    sid = new_session(client)
    url = f"/api/upload?session={sid}"
    answer = client.post(url, content=b"1,2,0\n" * (MAX_UPLOAD_BYTES // 6 + 1))
    assert answer.status_code == 413 and "limit" in answer.json()["error"]
    assert client.post(url, content=b"\xff\xfe1,2").status_code == 400
    answer = client.post(url, content=csv_text(rows=60, classes=3).encode())
    assert answer.json() == {"rows": 60, "classes": 3, "per_class": [20, 20, 20]}
    answer = configure(client, sid, **{**SMALL, **SOFTMAX}, data="csv")
    assert answer.status_code == 200 and answer.json()["layer_dims"] == [2, 5, 3, 3]
    X = np.array([p[:2] for p in answer.json()["points"]])
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-3)  # standardized
    act(client, sid, "start")
    assert wait_for(client, sid)["status"] == "done"


def test_start_trains_and_the_cost_falls(client):
    sid = new_session(client)
    configure(client, sid, **SMALL)
    act(client, sid, "start")
    latest = wait_for(client, sid)
    assert latest["status"] == "done" and latest["iteration"] == SMALL["iterations"]
    costs = [c for _, c in latest["curve"]]
    assert costs[-1] < 0.9 * costs[0]  # the flower: J falls from ~0.69
    assert 0 <= latest["train_acc"] <= 1 and 0 <= latest["test_acc"] <= 1
    assert [layer["units"] for layer in latest["layers"]] == [4, 1]
    assert latest["layers"][0]["grad_norm"] > 0
    again = act(client, sid, "start")  # a finished run says so
    assert again["status"] == "done" and "iterations" in again["message"]


def test_layer_readings_come_from_jaxnet_health(client):
    """W = 0 makes every hidden unit equal: the page shows it and says why."""
    sid = new_session(client)
    configure(client, sid, **SMALL, init="zeros")
    latest = state(client, sid)
    hidden, output = latest["layers"]
    assert hidden["symmetric"] and not output["symmetric"]
    assert hidden["dead"] is None  # tanh units cannot be dead
    assert hidden["weight_norm"] == 0.0 and hidden["grad_norm"] == 0.0
    assert any("symmetric hidden units" in hint for hint in latest["hints"])
    configure(client, sid, **SMALL)  # Xavier: no hint
    assert state(client, sid)["hints"] == []


def test_a_diverging_run_stops_with_the_drivers_message(client):
    sid = new_session(client)
    configure(client, sid, **SMALL, learning_rate=1000)
    act(client, sid, "start")
    latest = wait_for(client, sid)
    assert latest["status"] == "diverged"
    assert "Lower the learning rate" in latest["message"]
    assert configure(client, sid, **SMALL).status_code == 200  # and goes on


def test_pause_step_and_resume_continue_one_run(client):
    sid = new_session(client)
    configure(client, sid, **{**SMALL, "iterations": 1_000_000})
    act(client, sid, "start")
    wait_for(client, sid, ("running",))
    act(client, sid, "pause")
    paused = wait_for(client, sid)
    assert paused["status"] == "paused"
    done = paused["iteration"]
    assert 0 < done < 1_000_000
    time.sleep(0.2)
    assert state(client, sid)["iteration"] == done  # paused means paused
    act(client, sid, "step")
    stepped = wait_for(client, sid)
    assert stepped["iteration"] == done + 1
    act(client, sid, "start")
    wait_for(client, sid, ("running",))
    act(client, sid, "pause")
    resumed = wait_for(client, sid)
    assert resumed["iteration"] > done + 1
    assert resumed["curve"][-1][0] == resumed["iteration"] - 1  # one history


def test_new_settings_cancel_the_old_run_cleanly(client):
    sid = new_session(client)
    configure(client, sid, **{**SMALL, "iterations": 1_000_000})
    act(client, sid, "start")
    wait_for(client, sid, ("running",))
    session = client.app.state.sessions.get(sid)
    old = session.thread
    assert configure(client, sid, **{**SMALL, "hidden": "3"}).status_code == 200
    assert not old.is_alive()  # stopped, not left running
    time.sleep(0.3)  # nothing the old run computes shows any more
    latest = state(client, sid)
    assert latest["status"] == "ready" and latest["iteration"] == 0
    assert [layer["units"] for layer in latest["layers"]] == [3, 1]
    act(client, sid, "start")  # and the new one trains
    assert wait_for(client, sid)["status"] == "done"


def test_reset_gives_the_seeds_params_again(client):
    sid = new_session(client)
    configure(client, sid, **SMALL)
    first = state(client, sid)["boundary"]
    act(client, sid, "start")
    trained = wait_for(client, sid)["boundary"]
    assert trained != first
    act(client, sid, "reset")
    again = state(client, sid)
    assert again["iteration"] == 0 and again["boundary"] == first


def test_two_sessions_train_at_once_independently(client):
    a, b = new_session(client), new_session(client)
    configure(client, a, **{**SMALL, "iterations": 300})
    configure(client, b, **{**SMALL, "data": "blobs", "iterations": 250})
    act(client, a, "start")
    act(client, b, "start")
    done_a, done_b = wait_for(client, a), wait_for(client, b)
    assert (done_a["iteration"], done_b["iteration"]) == (300, 250)
    assert done_b["train_acc"] == 1.0  # the blobs are separable
    assert done_a["curve"] != done_b["curve"]


def test_sessions_are_capped_least_recently_used_first(client):
    first = new_session(client)
    for _ in range(MAX_SESSIONS):
        new_session(client)
    assert client.get(f"/api/state?session={first}").status_code == 404


def test_event_stream_sends_each_update(client):
    sid = new_session(client)
    configure(client, sid, **SMALL)
    act(client, sid, "start")
    wait_for(client, sid)
    with client.stream("GET", f"/api/events?session={sid}&max_events=1") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    update = json.loads(lines[0][len("data: ") :])
    assert update["status"] == "done" and update["iteration"] == SMALL["iterations"]
    assert len(base64.b64decode(update["boundary"]["conf"])) == GRID * GRID


def test_gradient_check_checkpoint_and_code_reproduce_the_run(client, tmp_path):
    sid = new_session(client)
    configure(client, sid, **SMALL)
    act(client, sid, "start")
    assert wait_for(client, sid)["status"] == "done"
    check = client.post(f"/api/gradcheck?session={sid}").json()
    assert check["passed"] and len(check["rows"]) == 4  # W, b of 2 layers
    assert all(r["vs_finite_differences"] < 1e-6 for r in check["rows"])
    assert all(r["vs_autodiff"] < 1e-10 for r in check["rows"])
    answer = client.get(f"/api/checkpoint?session={sid}")
    path = tmp_path / "playground.npz"
    path.write_bytes(answer.content)
    params, info = load_checkpoint(path)
    assert info["activations"] == ["tanh", "sigmoid"]
    assert info["layer_dims"] == [2, 4, 1]
    assert info["metadata"]["iterations_done"] == SMALL["iterations"]
    # The snippet, run as a student would, trains the very same params.
    source = client.get(f"/api/code?session={sid}").text
    assert "jaxnet.train_loop(" in source and "num_iterations=200" in source
    scope: dict = {}
    exec(compile(source, "snippet", "exec"), scope)
    for mine, theirs in zip(params, scope["result"].params, strict=True):
        for key in ("W", "b"):  # same compiled steps: equal to float32 rounding
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, atol=1e-6)


def test_static_files_cannot_be_read_outside_the_app_folder(client):
    assert "canvas" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    for path in (
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fsession.py",
        "/static/%2e%2e%2f%2e%2e%2fsettings.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "import " not in answer.text and "root:" not in answer.text


def test_the_server_binds_127_0_0_1_and_a_busy_port_is_one_line():
    assert cli.build_parser().parse_args([]).host == "127.0.0.1"
    sock = cli.bind("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        with pytest.raises(ValueError, match="choose another port with --port"):
            cli.bind("127.0.0.1", port)
    finally:
        sock.close()


@pytest.mark.exclusive
def test_ctrl_c_stops_the_server_within_a_second_while_it_trains():
    """The command line: the URL on 127.0.0.1 is printed, a page's event
    stream is open and a run trains; SIGINT ends the process within 1 s."""
    import httpx2 as httpx  # what Starlette's test client uses (dev extra)

    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    with subprocess.Popen(
        [sys.executable, "-m", "experiments.playground", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    ) as proc:  # fmt: skip
        try:
            line = proc.stdout.readline()
            assert line.startswith("jaxnet playground at http://127.0.0.1:"), line
            url = line.split()[3]
            with httpx.Client(base_url=url, timeout=30) as http:
                sid = http.post("/api/session").json()["session"]
                settings = {**SMALL, "iterations": 10**6}
                http.post(f"/api/configure?session={sid}", json=settings)
                http.post(f"/api/control?session={sid}", json={"action": "start"})
                with http.stream("GET", f"/api/events?session={sid}") as stream:
                    for text in stream.iter_lines():
                        if '"status": "running"' in text:
                            break
                    start = time.monotonic()
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=10)
                    elapsed = time.monotonic() - start
        finally:
            if proc.poll() is None:
                proc.kill()
        output = proc.stdout.read()
    assert elapsed < 1.0, f"the server took {elapsed:.2f} s to stop"
    assert proc.returncode == 130
    assert "Traceback" not in output
