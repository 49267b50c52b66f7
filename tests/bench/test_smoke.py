"""Smoke test of the benchmark suite: ``python -m bench --quick`` runs and writes valid results.

It checks that every case runs and that the JSON, Markdown and PNG are well formed; it
never asserts on a time (the figures of a quick run mean nothing).
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from bench import _trees

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_json_markdown_and_png(tmp_path):
    # A separate process: the bench runs with jax's defaults, not this suite's x64 and strict promotion.
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path), "--peak-gbs", "100"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "quick.json").read_text())
    assert record["quick"] is True
    assert record["machine"]["versions"]["optax"]
    assert len(record["big_leaf"]) == 7 and len(record["trees"]) == len(_trees.CASES) and len(record["state"]) >= 4
    assert record["peak_bandwidth_gbs"] == 100
    for row in record["big_leaf"]:
        assert row["step_s"]["gradtx"] > 0 and row["step_s"]["optax"] > 0 and math.isfinite(row["ratio"])
        # The nominal fraction is the floor's traffic over 100 GB/s, per library.
        for lib in ("gradtx", "optax"):
            expected = row["floor_bytes_per_param"] * row["n_params"] / 100e9 / row["step_s"][lib]
            assert math.isclose(row["peak_fraction"][lib], expected, rel_tol=1e-12)
    for row in record["trees"]:
        for lib in ("gradtx", "optax", "floor"):
            assert row[lib]["hlo_instructions"] > 0 and row[lib]["compile_s"] > 0
        assert set(row["floor_ratio"]) == {"trace_compile_cpu_s", "step_s"}
    assert (tmp_path / "quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "quick.md").read_text()
    assert "| one large leaf |" in markdown and "| gradtx of peak | optax of peak |" in markdown
