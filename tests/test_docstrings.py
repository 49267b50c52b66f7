"""Every public name has a docstring, and every docstring example runs.

The doctests run in a subprocess with jax's default configuration (float32 defaults, standard
promotion), as a user would see them, rather than under this suite's x64/strict settings.
"""

import inspect
import subprocess
import sys
import textwrap
import types

import gradtx

TYPE_ALIASES = {"OptState", "Params", "Updates", "ScalarOrSchedule", "Schedule", "ArrayTree"}


def public_names() -> list[str]:
    return sorted(
        name
        for name, obj in vars(gradtx).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType) and name not in TYPE_ALIASES
    )


def test_every_public_name_has_a_docstring():
    missing = []
    for name in public_names():
        obj = getattr(gradtx, name)
        doc = inspect.getdoc(obj)
        if not doc or len(doc.strip()) < 10:
            missing.append(name)
    assert not missing, f"public names without a docstring: {missing}"


def test_docstring_examples_run():
    script = textwrap.dedent(
        """
        import doctest, importlib, pkgutil, sys
        import gradtx
        failures = 0
        names = ["gradtx"] + [m.name for m in pkgutil.walk_packages(gradtx.__path__, "gradtx.")]
        for name in names:
            module = importlib.import_module(name)
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            failures += result.failed
        sys.exit(1 if failures else 0)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
