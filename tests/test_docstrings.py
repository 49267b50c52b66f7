"""Every public name has a docstring, every public function and class shows an example, and every example runs.

"Public" is every name a user can import from ``gradtx`` or from a public module below it (``gradtx.transforms``,
``gradtx.sharding``, ...; see ``tests/support/public_api.py``), so new names and namespaces are checked as they come.

The doctests run in a subprocess with jax's default configuration (float32 defaults, standard promotion), as a user
would see them, rather than under this suite's x64/strict settings: one process for every module of the package.
"""

import subprocess
import sys
import textwrap

from tests.support.public_api import is_gradtx_callable, is_record, own_docstring, public_objects

TYPE_ALIASES = {"OptState", "Params", "Updates", "ScalarOrSchedule", "Schedule", "ArrayTree"}

# Public functions and classes whose docstring has no ``Examples:`` section yet. It may only shrink: a name that gains
# an example must leave this list (the test below says so), and a new public name must come with an example.
MISSING_EXAMPLES: set[str] = set()


def _needs_example() -> dict[str, object]:
    """Functions and classes, minus state/info named tuples and protocols (their fields are their documentation)."""
    return {name: obj for name, obj in public_objects().items() if is_gradtx_callable(obj) and not is_record(obj)}


def test_every_public_name_has_a_docstring():
    missing = [
        name
        for name, obj in public_objects().items()
        if name.rpartition(".")[2] not in TYPE_ALIASES and len(own_docstring(obj).strip()) < 10
    ]
    assert not missing, f"public names without a docstring: {missing}"


def test_every_public_function_and_class_has_an_examples_section():
    without = {name for name, obj in _needs_example().items() if "Examples:" not in own_docstring(obj)}
    new = sorted(without - MISSING_EXAMPLES)
    assert not new, f"public names without an `Examples:` section (add a doctested example): {new}"
    done = sorted(MISSING_EXAMPLES - without)
    assert not done, f"these now have an example (or are gone): remove them from MISSING_EXAMPLES: {done}"


def test_docstring_examples_run():
    script = textwrap.dedent(
        """
        import doctest, importlib, pkgutil, sys
        import gradtx
        failures = attempted = 0
        names = ["gradtx"] + [m.name for m in pkgutil.walk_packages(gradtx.__path__, "gradtx.")]
        for name in names:
            module = importlib.import_module(name)
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            failures += result.failed
            attempted += result.attempted
        print(f"{attempted} doctest lines in {len(names)} modules, {failures} failed")
        sys.exit(1 if failures or not attempted else 0)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={"JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
