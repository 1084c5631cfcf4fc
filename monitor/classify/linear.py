"""Linear heads over fixed features: fitting (numpy only, deterministic) and inference.

A head maps a feature matrix ``X`` (n, d) to logits ``X @ W.T + b``. Binary heads (relevance, each
topic) have one row per output and use a sigmoid; the stance head has one row per class and a softmax.
Fitting minimises the mean log loss plus an L2 penalty by Newton's method, so the optimum is found to
machine precision and the result
does not depend on iteration counts or random initialisation. Standardisation and calibration (Platt
scaling, threshold shift, temperature) are folded into ``W`` and ``b`` before saving, so inference is one
matrix product.

Solver: Newton's method with conjugate-gradient steps (Hessian-vector products only), so its cost grows
with n * d rather than d^3 and a head over 770 features fits in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def sigmoid(z: Array) -> Array:
    out: Array = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def softmax(z: Array) -> Array:
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: Array = e / e.sum(axis=1, keepdims=True)
    return out


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class Standardizer:
    """Per-feature centring and scaling learnt on training data (constant features are left alone)."""

    mean: Array
    scale: Array

    @classmethod
    def fit(cls, x: Array) -> Standardizer:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale < 1e-8, 1.0, scale)
        return cls(mean, scale)

    def __call__(self, x: Array) -> Array:
        out: Array = (x - self.mean) / self.scale
        return out


def _conjugate_gradient(
    hvp: Callable[[Array], Array], b: Array, *, tol: float = 1e-10, max_iter: int = 500
) -> Array:
    """Solve H x = b for a symmetric positive definite H given only products H v."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rs = float(np.sum(r * r))
    stop = tol * tol * max(rs, 1e-300)
    for _ in range(max_iter):
        if rs <= stop:
            break
        hp = hvp(p)
        alpha = rs / float(np.sum(p * hp))
        x += alpha * p
        r -= alpha * hp
        rs_new = float(np.sum(r * r))
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def _newton(
    objective: Callable[[Array], tuple[float, Array, Callable[[Array], Array]]], theta: Array, *, iters: int
) -> Array:
    """Newton-CG with backtracking: ``objective(theta)`` -> (loss, gradient, Hessian-vector product)."""
    loss, grad, hvp = objective(theta)
    for _ in range(iters):
        if float(np.max(np.abs(grad))) < 1e-10:
            break
        step = _conjugate_gradient(hvp, grad)
        t = 1.0
        for _ in range(40):
            cand = theta - t * step
            new_loss, new_grad, new_hvp = objective(cand)
            if new_loss <= loss + 1e-14:
                break
            t *= 0.5
        else:
            break
        improved = loss - new_loss
        theta, loss, grad, hvp = cand, new_loss, new_grad, new_hvp
        if improved < 1e-15:
            break
    return theta


def fit_binary(
    x: Array, y: Array, *, l2: float, weights: Array | None = None, iters: int = 100
) -> tuple[Array, float]:
    """L2-regularised logistic regression by Newton-CG; returns (w, b). ``x`` should be standardised.

    Minimises mean(weight * log loss) + l2/2 * |w|^2 (the bias is not penalised) to machine precision.
    """
    n, d = x.shape
    sw = np.ones(n) if weights is None else weights / np.mean(weights)
    xb = np.hstack([x, np.ones((n, 1))])
    reg = np.full(d + 1, l2)
    reg[-1] = 1e-12

    def objective(theta: Array) -> tuple[float, Array, Callable[[Array], Array]]:
        z = xb @ theta
        p = sigmoid(z)
        loss = float(np.mean(sw * (np.logaddexp(0, z) - y * z)) + 0.5 * np.sum(reg * theta**2))
        grad = xb.T @ (sw * (p - y)) / n + reg * theta
        curv = sw * p * (1 - p) / n

        def hvp(v: Array) -> Array:
            out: Array = xb.T @ (curv * (xb @ v)) + reg * v
            return out

        return loss, grad, hvp

    theta = _newton(objective, np.zeros(d + 1), iters=iters)
    return theta[:-1].copy(), float(theta[-1])


def fit_softmax(
    x: Array, y: Array, n_classes: int, *, l2: float, weights: Array | None = None, iters: int = 100
) -> tuple[Array, Array]:
    """L2-regularised multinomial logistic regression by Newton-CG; returns (W (k, d), b (k,)).

    ``y`` holds class indices. All k rows are penalised (the L2 term makes the problem strictly convex);
    biases only by a tiny ridge that pins their sum.
    """
    n, d = x.shape
    k = n_classes
    sw = np.ones(n) if weights is None else weights / np.mean(weights)
    xb = np.hstack([x, np.ones((n, 1))])
    onehot = np.eye(k)[y.astype(int)]
    reg = np.full(d + 1, l2)
    reg[-1] = 1e-8

    def objective(flat: Array) -> tuple[float, Array, Callable[[Array], Array]]:
        theta = flat.reshape(k, d + 1)
        z = xb @ theta.T
        zmax = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
        loss = float(np.mean(sw * (lse - (z * onehot).sum(axis=1))) + 0.5 * np.sum(reg * theta**2))
        p = softmax(z)
        grad = ((p - onehot) * sw[:, None]).T @ xb / n + reg * theta

        def hvp(v_flat: Array) -> Array:
            v = v_flat.reshape(k, d + 1)
            zv = xb @ v.T  # (n, k)
            inner = p * (zv - (p * zv).sum(axis=1, keepdims=True))
            out: Array = ((inner * sw[:, None]).T @ xb / n + reg * v).reshape(-1)
            return out

        return loss, grad.reshape(-1), hvp

    theta = _newton(objective, np.zeros(k * (d + 1)), iters=iters).reshape(k, d + 1)
    return theta[:, :-1].copy(), theta[:, -1].copy()


def fit_platt(z: Array, y: Array) -> tuple[float, float]:
    """Platt scaling: (a, c) such that sigmoid(a * z + c) is calibrated on (z, y)."""
    w, b = fit_binary(z.reshape(-1, 1), y, l2=1e-6)
    return float(w[0]), b


def fit_temperature(z: Array, y: Array) -> float:
    """The softmax temperature that minimises the log loss of logits ``z`` on labels ``y`` (grid + refine)."""
    idx = y.astype(int)

    def nll(t: float) -> float:
        p = softmax(z / t)
        return float(-np.mean(np.log(p[np.arange(len(idx)), idx] + 1e-12)))

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = float(grid[int(np.argmin([nll(float(t)) for t in grid]))])
    for t in np.linspace(best * 0.9, best * 1.1, 41):
        if nll(float(t)) < nll(best):
            best = float(t)
    return best


def best_f1_threshold(p: Array, y: Array) -> tuple[float, float]:
    """The threshold on ``p`` maximising F1 on ``y`` (the middle of the best plateau); returns (t, F1)."""
    candidates = np.linspace(0.05, 0.95, 91)
    scores = []
    for t in candidates:
        pred = p >= t
        tp = float(np.sum(pred & (y > 0.5)))
        fp = float(np.sum(pred & (y <= 0.5)))
        fn = float(np.sum(~pred & (y > 0.5)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    arr = np.round(np.array(scores), 9)
    best = arr.max()
    # Several thresholds usually tie: take the middle of the longest run of best values.
    runs: list[tuple[int, int]] = []
    start = None
    for i, v in enumerate(arr):
        if v == best and start is None:
            start = i
        if v != best and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(arr) - 1))
    lo, hi = max(runs, key=lambda r: r[1] - r[0])
    return float(candidates[(lo + hi) // 2]), float(best)


@dataclass(frozen=True)
class LinearHead:
    """A fitted head: logits = X @ weight.T + bias, over the feature groups it names.

    ``kind`` is "sigmoid" (independent binary outputs, one per label) or "softmax" (one distribution over
    the labels).
    """

    name: str
    kind: str
    labels: tuple[str, ...]
    features: tuple[str, ...]
    weight: Array  # (k, d)
    bias: Array  # (k,)

    def logits(self, x: Array) -> Array:
        out: Array = x @ self.weight.T + self.bias
        return out

    def predict_proba(self, x: Array) -> Array:
        z = self.logits(x)
        return sigmoid(z) if self.kind == "sigmoid" else softmax(z)


def fold_binary(
    std: Standardizer, w: Array, b: float, *, scale: float = 1.0, shift: float = 0.0
) -> tuple[Array, float]:
    """Fold standardisation and calibration into raw weights: z = scale * (w . (x - m) / s + b) + shift."""
    w_raw = scale * w / std.scale
    b_raw = scale * (b - float(np.sum(w * std.mean / std.scale))) + shift
    return w_raw, b_raw


def fold_softmax(
    std: Standardizer, w: Array, b: Array, *, temperature: float = 1.0, offsets: Sequence[float] | None = None
) -> tuple[Array, Array]:
    """Fold standardisation, temperature and per-class offsets into raw (W, b)."""
    w_raw = w / std.scale[None, :] / temperature
    b_raw = (b - (w * (std.mean / std.scale)[None, :]).sum(axis=1)) / temperature
    if offsets is not None:
        b_raw = b_raw + np.asarray(offsets)
    return w_raw, b_raw
