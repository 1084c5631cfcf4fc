"""The numpy heads: fitting, calibration and folding."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.classify.linear import (
    LinearHead,
    Standardizer,
    best_f1_threshold,
    fit_binary,
    fit_platt,
    fit_softmax,
    fit_temperature,
    fold_binary,
    fold_softmax,
    logit,
    sigmoid,
    softmax,
)


def blobs(n: int = 300, d: int = 5, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(size=(k, d)) * 2.0
    x = centres[y] + rng.normal(size=(n, d)) * 0.8 + 5.0  # off-centre, so standardisation matters
    return x, y


def test_fit_binary_separates_and_reaches_the_optimum() -> None:
    x, y = blobs()
    std = Standardizer.fit(x)
    w, b = fit_binary(std(x), y.astype(float), l2=0.01)
    p = sigmoid(std(x) @ w + b)
    assert np.mean((p > 0.5) == (y == 1)) > 0.95
    # At the optimum the gradient of the penalised loss vanishes.
    xs = std(x)
    grad_w = xs.T @ (p - y) / len(y) + 0.01 * w
    assert np.max(np.abs(grad_w)) < 1e-6
    assert abs(float(np.mean(p - y))) < 1e-6


def test_fit_binary_is_deterministic() -> None:
    x, y = blobs()
    a = fit_binary(x, y.astype(float), l2=0.1)
    b = fit_binary(x, y.astype(float), l2=0.1)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_fit_softmax_three_classes() -> None:
    x, y = blobs(k=3)
    std = Standardizer.fit(x)
    w, b = fit_softmax(std(x), y, 3, l2=0.01)
    p = softmax(std(x) @ w.T + b)
    assert np.mean(np.argmax(p, axis=1) == y) > 0.9
    onehot = np.eye(3)[y]
    grad = (p - onehot).T @ std(x) / len(y) + 0.01 * w
    assert np.max(np.abs(grad)) < 1e-6


def test_folding_gives_the_same_logits_as_standardise_then_apply() -> None:
    x, y = blobs(k=3)
    std = Standardizer.fit(x)
    w, b = fit_binary(std(x), (y == 1).astype(float), l2=0.1)
    w_raw, b_raw = fold_binary(std, w, b, scale=1.7, shift=-0.3)
    assert np.allclose(x @ w_raw + b_raw, 1.7 * (std(x) @ w + b) - 0.3)
    ws, bs = fit_softmax(std(x), y, 3, l2=0.1)
    ws_raw, bs_raw = fold_softmax(std, ws, bs, temperature=2.0, offsets=[0.0, 0.5, -1.0])
    assert np.allclose(x @ ws_raw.T + bs_raw, (std(x) @ ws.T + bs) / 2.0 + np.array([0.0, 0.5, -1.0]))


def test_platt_scaling_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=4000) * 3
    y = (rng.random(4000) < sigmoid(0.5 * z - 1.0)).astype(float)
    a, c = fit_platt(z, y)
    assert a == pytest.approx(0.5, abs=0.08)
    assert c == pytest.approx(-1.0, abs=0.15)


def test_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(2)
    true = rng.normal(size=(3000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(true)])
    t = fit_temperature(true * 4.0, y)
    assert t == pytest.approx(4.0, rel=0.2)


def test_best_f1_threshold_takes_the_middle_of_the_plateau() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t, f1 = best_f1_threshold(p, y)
    assert f1 == 1.0
    assert 0.3 < t <= 0.7
    assert t == pytest.approx(0.5, abs=0.03)


def test_linear_head_predicts() -> None:
    head = LinearHead(
        "h", "softmax", ("a", "b"), ("embedding",), np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)
    )
    p = head.predict_proba(np.array([[2.0, 0.0]]))
    assert p.shape == (1, 2) and p[0, 0] > p[0, 1] and p.sum() == pytest.approx(1.0)
    assert logit(0.5) == 0.0
