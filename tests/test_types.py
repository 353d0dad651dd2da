"""Types: jaxnet's annotations reach a user's type checker through py.typed.

mypy must find the installed jaxnet from any folder. setuptools' default
editable install hides the package behind an import hook that mypy cannot see,
so setup.cfg selects the "strict" editable mode (a plain path in a .pth file).
"""

import os
import subprocess
import sys
import textwrap

USER_SCRIPT = textwrap.dedent(
    """\
    import jax

    import jaxnet

    params = jaxnet.init_params(jax.random.key(0), [3, 2, 1])
    X = jax.numpy.ones((3, 4))
    AL, caches = jaxnet.model_forward(params, X, ["relu", "sigmoid"])
    wrong: str = jaxnet.init_params(jax.random.key(0), [3, 2, 1])
    """
)
WRONG_LINE = 8  # the deliberate error above: Params assigned to a str


def test_mypy_sees_installed_jaxnet_from_outside_the_repository(tmp_path):
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    # Only the installation may lead mypy to jaxnet: no PYTHONPATH, no MYPYPATH.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")]
        + ["--no-error-summary", "user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    fix = 'jaxnet is installed in a form mypy cannot see; run pip install -e ".[dev]"'
    assert "Cannot find implementation or library stub" not in out, f"{fix}\n{out}"
    assert "missing library stubs or py.typed" not in out, f"{fix}\n{out}"
    errors = [line for line in out.splitlines() if ": error:" in line]
    # Exactly the deliberate error: the correct uses above it type-check, and
    # mypy knows init_params returns Params (had jaxnet been Any, no error).
    assert len(errors) == 1, out
    assert errors[0].startswith(f"user.py:{WRONG_LINE}: error:"), out
    assert "list[dict[str, Array]]" in errors[0], out
    assert errors[0].endswith("[assignment]"), out
    assert done.returncode == 1, out
