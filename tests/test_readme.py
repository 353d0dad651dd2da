"""The README's tour runs as printed: its python block is executed here, so a
renamed function or a changed default cannot leave it wrong unnoticed."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_tour_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python block"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md (tour)", "exec"), namespace)  # noqa: S102
    assert namespace["result"].passed
    assert namespace["costs"][-1] < namespace["costs"][0]
    # the pure trainer gives fit's numbers (float64: the same operations)
    assert (
        abs(float(namespace["same_costs"][-1]) - float(namespace["costs"][-1])) < 1e-12
    )
    assert namespace["final"].shape == (3,)
