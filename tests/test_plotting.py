"""plotting: PNG files of schedules and of an LR range test (matplotlib's Agg backend)."""

import jax.numpy as jnp
import pytest

import gradtx
from gradtx import plotting

pytest.importorskip("matplotlib")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_schedules_writes_png(tmp_path):
    path = tmp_path / "s.png"
    out = plotting.plot_schedules(
        {"cosine": gradtx.cosine_decay_schedule(1.0, 50), "onecycle": gradtx.cosine_onecycle_schedule(50, 1.0)},
        60,
        str(path),
        title="two schedules",
    )
    assert out == str(path) and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000
    single = tmp_path / "one.png"
    plotting.plot_schedules(gradtx.exponential_decay(1.0, 5, 0.5), 30, str(single), log_scale=True)
    assert single.read_bytes()[:8] == PNG_MAGIC


def test_plot_lr_finder_writes_png(tmp_path):
    result = gradtx.lr_finder(gradtx.sgd, lambda p: jnp.sum((p - 3.0) ** 2), jnp.zeros(2, jnp.float32), num_steps=30)
    path = tmp_path / "lr.png"
    assert result.plot(str(path)) == str(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="num_steps"):
        plotting.plot_schedules(gradtx.constant_schedule(1.0), 0, str(tmp_path / "x.png"))
    with pytest.raises(TypeError, match="schedules"):
        plotting.plot_schedules({"bad": 3.0}, 10, str(tmp_path / "x.png"))  # type: ignore[dict-item]
