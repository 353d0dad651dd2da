"""experiments.vectorization: a smoke run at tiny sizes (results are cross-checked
inside ``compare``: loop, numpy and jit must agree)."""

import math

from experiments import vectorization


def test_smoke_tiny_sizes(tmp_path):
    metrics = vectorization.main(
        [
            "--size",
            "200",
            "--outer-size",
            "12",
            "--n-x",
            "8",
            "--m",
            "5",
            "--repeats",
            "2",
            "--loop-repeats",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    rows = list(metrics["models"].values())
    assert [r["operation"].split(",")[0] for r in rows] == [
        "dot",
        "outer",
        "elementwise",
        "general dot W x",
        "logistic grad",
    ]
    for row in rows:
        for key in ("loop_ms", "numpy_ms", "jit_ms", "compile_ms", "loop_over_numpy"):
            assert math.isfinite(row[key]) and row[key] > 0
    assert (tmp_path / "timings.png").stat().st_size > 0
    assert (tmp_path / "metrics.json").is_file()


def test_loop_forms_match_numpy():
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random(7), rng.random(7)
    W = rng.random((3, 7))
    # sums of 7 float64 products: any order agrees to ~1e-15
    np.testing.assert_allclose(vectorization.dot_loop(a, b), a @ b, rtol=1e-12)
    np.testing.assert_allclose(vectorization.outer_loop(a, b), np.outer(a, b), 0, 0)
    np.testing.assert_allclose(vectorization.elementwise_loop(a, b), a * b, 0, 0)
    np.testing.assert_allclose(vectorization.gdot_loop(W, a), W @ a, rtol=1e-12)
