"""The playground in a real browser: headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs
them). Without a browser the test skips with the reason, except where one is
required (CI=true or JAXNET_REQUIRE_BROWSER=1): there it fails.
"""

import os
import shutil
import socket
import threading
import time

import pytest

from experiments.playground.app import create_app

# test_playground's small network and data, so the compiled programs are shared.
SETUP = (
    "data=flower&points=60&hidden=4&activations=tanh&output=sigmoid"
    "&init=xavier&learning_rate=0.1&optimizer=gd&iterations=200"
)
CANVAS_SUM = """
const c = document.getElementById('boundary');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let sum = 0, distinct = new Set();
for (let i = 0; i < d.length; i += 4 * 97) { sum += d[i] * 3 + d[i + 1] * 5 + d[i + 2];
  distinct.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]); }
return [sum, distinct.size];
"""


def _browser():
    """(chromium, chromedriver) paths, or skip / fail with the reason."""
    found = [shutil.which(n) for n in ("chromium", "chromedriver")]
    if all(found):
        return found
    reason = (
        "no headless browser: install Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver; .ci/run does it)"
    )
    if browser_required():
        pytest.fail(reason)
    pytest.skip(reason)


def browser_required() -> bool:
    """CI=true or JAXNET_REQUIRE_BROWSER=1: a missing browser is a failure."""
    env = os.environ
    return env.get("CI") == "true" or env.get("JAXNET_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def server():
    """The app on a free 127.0.0.1 port, in a thread of this process."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = create_app()
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=0.2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    app.state.closing.set()
    app.state.sessions.close()
    server.should_exit = True
    thread.join(10)
    sock.close()


def _wait(what, condition, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("env", "outcome"),
    [({"CI": "true"}, "fail"), ({"JAXNET_REQUIRE_BROWSER": "1"}, "fail"), ({}, "skip")],
)
def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch, env, outcome):
    monkeypatch.setenv("PATH", "/nonexistent")
    for name in ("CI", "JAXNET_REQUIRE_BROWSER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="install Debian's chromium"):
        _browser()


def test_the_page_trains_the_flower_and_checks_gradients(server, tmp_path):
    chromium, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(server + "#" + SETUP)
        text = lambda id_: driver.find_element(By.ID, id_).text  # noqa: E731
        # The URL's set-up is on the page: one tanh layer of 4 units.
        rows = _wait("the layers", lambda: driver.find_elements(By.CSS_SELECTOR,
                     "#layers .layer-row input"))  # fmt: skip
        assert [r.get_attribute("value") for r in rows] == ["4"]
        assert driver.find_element(By.ID, "iterations").get_attribute("value") == "200"
        _wait("the first boundary", lambda: text("status") == "ready")
        before = driver.execute_script(CANVAS_SUM)
        assert before[1] > 5, "the boundary canvas is blank"
        driver.find_element(By.ID, "start").click()
        _wait("the run to finish", lambda: text("status").startswith("done"))
        cost = float(text("cost-value"))
        assert cost < 0.5, f"the cost did not fall from 0.74: {cost}"  # (0.35)
        after = driver.execute_script(CANVAS_SUM)
        assert after[1] > 5 and after[0] != before[0], "the boundary did not change"
        assert "hidden=4&" in driver.current_url  # the state is in the URL
        driver.find_element(By.ID, "gradcheck").click()
        verdict = _wait(
            "the gradient check",
            lambda: driver.find_elements(By.ID, "gradcheck-verdict"),
        )[0].text
        assert "passed" in verdict, verdict
        rows = driver.find_elements(By.CSS_SELECTOR, "#gradcheck-table tbody tr")
        assert len(rows) == 4  # W and b of two layers
        shot = tmp_path / "playground.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not [e for e in errors if "favicon" not in e["message"]], errors
    finally:
        driver.quit()
