"""The code blocks of the README and of the docs pages run as written.

Each page runs in a subprocess with jax's default configuration (as a reader would run it), its
blocks joined in order since later blocks reuse names from earlier ones. The subprocess imports
the checkout under test, not whatever gradtx is installed: the repository root comes first on
``PYTHONPATH``, and the script first asserts that ``gradtx.__file__`` lies in the checkout.
"""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


# Fails the page at once when the subprocess would import a gradtx other than this checkout's.
CHECKOUT_GUARD = (
    "import pathlib as _pathlib, gradtx as _gradtx\n"
    f"assert _pathlib.Path(_gradtx.__file__).resolve().is_relative_to({str(ROOT)!r}), "
    "f'imported gradtx from {_gradtx.__file__}, not the checkout under test'\n"
)


def run_script(script: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHECKOUT_GUARD + script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_subprocess_imports_the_checkout(tmp_path):
    proc = run_script("print(_gradtx.__file__)", tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert pathlib.Path(proc.stdout.strip()).resolve() == ROOT / "gradtx" / "__init__.py"


def test_readme_shows_the_quickstart_and_a_custom_chain():
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 2
    proc = run_script("\n".join(blocks) + "\nassert float(value) < 1.0, value\n", ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize("page", [p for p in DOC_PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_code_blocks_run(page, tmp_path):
    proc = run_script("\n".join(python_blocks(page)), tmp_path)  # files they write land in tmp_path
    assert proc.returncode == 0, proc.stderr[-4000:]
