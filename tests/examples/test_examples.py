"""Every script in examples/ runs end to end in its quick smoke mode (``--smoke``).

Each runs in a subprocess with jax's default configuration (as a user would run it: float32, no
strict promotion, one CPU device) and writes its pictures and checkpoints under ``tmp_path``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

pytest.importorskip("flax", reason="the examples need the dev extra")
pytest.importorskip("matplotlib", reason="the examples need the dev extra")


def run_example(name: str, *args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {
        "JAX_PLATFORMS": "cpu",
        "MPLBACKEND": "Agg",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),  # orbax and matplotlib write caches under $HOME
    }
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--smoke", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def check(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


# script -> (what it writes to --out: a .png file, a directory or None for nothing, a line its
# output must contain).
# Examples with tests of their own: train_digits.py (the demo, below) and zero_sharding.py (with
# the sharding work).
SMOKE = {
    "rosenbrock.py": ("rosenbrock.png", "steps until f - f*"),
    "flax_linen.py": ("checkpoints", "resumed run vs uninterrupted run"),
    "accumulation_and_mixed_precision.py": (None, "accumulated vs large batch"),
    "finetune_param_groups.py": (None, "layer-wise decay learning rates"),
    "lr_finder.py": ("lr_finder.png", "suggested learning rate"),
    "many_tensors.py": (None, "same first update: yes"),
}
OWN_TESTS = {"train_digits.py", "zero_sharding.py"}


def test_every_example_has_a_smoke_test():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    missing = scripts - set(SMOKE) - OWN_TESTS
    assert not missing, f"examples without a smoke test: {sorted(missing)}"


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_example_smoke(script, tmp_path):
    out, expected = SMOKE[script]
    stdout = check(run_example(script, *(["--out", str(tmp_path / out)] if out else []), cwd=tmp_path))
    assert expected in stdout
    if out is None:
        return
    if out.endswith(".png"):
        assert (tmp_path / out).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert any((tmp_path / out).iterdir()), f"{script} wrote nothing under --out"


def test_demo_trains_and_plots(tmp_path):
    pytest.importorskip("sklearn", reason="the demo's data set ships with scikit-learn (dev extra)")
    out = tmp_path / "demo.png"
    stdout = check(run_example("train_digits.py", "--out", str(out), cwd=tmp_path))
    assert "validation accuracy" in stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_default_plot_path_is_the_one_the_readme_names():
    readme = (ROOT / "README.md").read_text()
    demo = (EXAMPLES / "train_digits.py").read_text()
    assert "out/demo.png" in readme and 'default=pathlib.Path("out/demo.png")' in demo
    assert "examples/train_digits.py" in (ROOT / "Makefile").read_text()
