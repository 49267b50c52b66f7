"""lr_finder: the exponential ramp, smoothing, divergence stop and the suggestion."""

import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def quadratic(params, batch):
    return jnp.mean((batch["x"] @ params["w"] - batch["y"]) ** 2)


def make_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 3)).astype(np.float32)
    w = np.array([1.0, -2.0, 0.5], np.float32)
    return {"x": jnp.asarray(x), "y": jnp.asarray(x @ w)}


def test_ramp_smoothing_divergence_and_suggestion():
    data = make_data()
    params = {"w": jnp.zeros(3, jnp.float32)}
    result = gradtx.lr_finder(gradtx.sgd, quadratic, params, data, min_lr=1e-4, max_lr=100.0, num_steps=80)
    n = int(result.num_run)
    lrs = np.asarray(result.learning_rates)
    np.testing.assert_allclose(lrs, 1e-4 * (1e6) ** (np.arange(80) / 79), rtol=1e-12)
    # SGD on this quadratic diverges for lr above 2 / lambda_max (about 1): the run stops early.
    assert 10 < n < 80 and lrs[n - 1] > 0.5
    losses = np.asarray(result.losses)
    assert np.all(np.isnan(losses[n:])) and np.all(np.isfinite(losses[: n - 1]))
    beta, avg = 0.98, 0.0
    for t in range(n):
        avg = beta * avg + (1 - beta) * losses[t]
        assert result.smoothed_losses[t] == pytest.approx(avg / (1 - beta ** (t + 1)), rel=1e-9)
    smoothed = np.asarray(result.smoothed_losses)[:n]
    assert smoothed[-1] > 4.0 * smoothed.min()
    w = 80 // 20  # centred differences over 4 steps on each side
    log_lr = np.log(lrs)
    centres = [t for t in range(max(w, 8), n - w)]  # the first num_steps // 10 steps are skipped
    slopes = [(smoothed[t + w] - smoothed[t - w]) / (log_lr[t + w] - log_lr[t - w]) for t in centres]
    best = centres[int(np.argmin(slopes))]
    assert float(result.suggestion) == pytest.approx(lrs[best], rel=1e-9)
    assert 1e-3 < float(result.suggestion) < 2.0


def test_suggestion_ignores_batch_noise_at_tiny_learning_rates():
    # Batches of very different difficulty: at tiny learning rates the loss jumps from batch to
    # batch while nothing is learned; the suggestion must come from where the loss really falls.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 32, 4))
    data = {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(x @ rng.normal(size=4), jnp.float32)}
    params = {"w": jnp.zeros(4, jnp.float32)}
    result = gradtx.lr_finder(gradtx.adam, quadratic, params, data, min_lr=1e-7, max_lr=10.0, num_steps=100)
    assert 1e-3 < float(result.suggestion) < 3.0


@pytest.mark.parametrize("offset", [-100.0, -10.0])
def test_a_negative_loss_runs_as_its_positive_shift_does(offset):
    # A log-likelihood is negative: `smooth > 4 * best` held at once there (best < 0), so the
    # run stopped after one step and suggested min_lr.
    data = make_data()
    params = {"w": jnp.zeros(3, jnp.float32)}
    shifted = lambda p, b: quadratic(p, b) + offset
    run = lambda f: gradtx.lr_finder(gradtx.sgd, f, params, data, min_lr=1e-4, max_lr=100.0, num_steps=80)
    plain, negative = run(quadratic), run(shifted)
    assert float(np.asarray(negative.losses)[0]) < 0
    n = int(plain.num_run)
    # It stops only once the loss rose by (kappa - 1) |min| above its minimum: later than the
    # positive loss (whose minimum is near 0), never at the first step.
    assert int(negative.num_run) >= n
    np.testing.assert_allclose(np.asarray(negative.losses)[:n], np.asarray(plain.losses)[:n] + offset, rtol=1e-5)
    assert float(negative.suggestion) == pytest.approx(float(plain.suggestion), rel=1e-6)


def test_no_batches_and_full_run():
    result = gradtx.lr_finder(
        lambda lr: gradtx.adam(lr),
        lambda p: jnp.sum(p**2),
        jnp.ones(2, jnp.float32),
        min_lr=1e-6,
        max_lr=1e-3,
        num_steps=20,
    )
    assert int(result.num_run) == 20 and bool(jnp.all(jnp.isfinite(result.losses)))


def test_errors():
    f = lambda p: jnp.sum(p**2)
    p = jnp.ones(2, jnp.float32)
    with pytest.raises(ValueError, match="max_lr"):
        gradtx.lr_finder(gradtx.sgd, f, p, min_lr=1.0, max_lr=0.5)
    with pytest.raises(ValueError, match="num_steps"):
        gradtx.lr_finder(gradtx.sgd, f, p, num_steps=1)
    with pytest.raises(ValueError, match="smoothing"):
        gradtx.lr_finder(gradtx.sgd, f, p, smoothing=1.0)
    with pytest.raises(ValueError, match="batches"):
        gradtx.lr_finder(gradtx.sgd, f, p, {"a": jnp.ones(3), "b": jnp.ones(4)})
