"""``examples/zero_sharding.py`` runs in smoke mode, and its memory table is the one docs/sharding.md shows."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_zero_sharding_example_runs_and_matches_the_docs_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "zero_sharding.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"JAX_PLATFORMS": "cpu", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| stage")]
    assert len(rows) == 5, proc.stdout
    # The example asserts measured == predicted itself; here the page must show what it prints.
    page = (ROOT / "docs" / "sharding.md").read_text()
    missing = [row for row in rows if row not in page]
    assert not missing, f"docs/sharding.md does not show these rows of the example's printout: {missing}"
    assert "in every setup (largest difference 0.0e+00" in proc.stdout
