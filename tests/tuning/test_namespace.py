"""``gradtx.lr_finder`` is the function of ``gradtx.tuning``, and no module of that name shadows it."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys

import gradtx


def test_lr_finder_is_the_tuning_function() -> None:
    assert gradtx.lr_finder is gradtx.tuning.lr_finder
    assert inspect.isfunction(gradtx.lr_finder)
    tuning = importlib.import_module("gradtx.tuning")
    assert tuning is gradtx.tuning and tuning.lr_finder is gradtx.lr_finder
    assert gradtx.lr_finder.__module__ == "gradtx.tuning._lr_finder"
    assert inspect.getmodule(gradtx.lr_finder) is importlib.import_module("gradtx.tuning._lr_finder")


def test_no_module_shadows_the_function() -> None:
    assert importlib.util.find_spec("gradtx.lr_finder") is None
    # Importing every public namespace in a fresh interpreter leaves the flat name a function.
    script = (
        "import inspect, gradtx, gradtx.tuning, gradtx.optimizers, gradtx.schedules, gradtx.transforms, "
        "gradtx.wrappers, gradtx.precision\n"
        "assert inspect.isfunction(gradtx.lr_finder), gradtx.lr_finder\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
