"""Losses against independent closed forms (PyTorch's definitions, mean
reduction), their gradients against central differences, and stability."""

import math

import numpy as np
import pytest

from mlpckpt import losses


def ref_mse(o, y):
    return sum((a - b) ** 2 for a, b in zip(o.ravel(), y.ravel())) / o.size


def ref_bce_logits(z, y):
    # per element: -[y log sigma(z) + (1 - y) log(1 - sigma(z))], with math.*
    total = 0.0
    for zi, yi in zip(z.ravel(), y.ravel()):
        log_s = -math.log1p(math.exp(-zi)) if zi >= 0 else zi - math.log1p(math.exp(zi))
        log_1ms = -zi + log_s
        total += -(yi * log_s + (1 - yi) * log_1ms)
    return total / z.size


def ref_ce(z, labels):
    total = 0.0
    for j, c in enumerate(labels):
        col = z[:, j]
        m = max(col)
        lse = m + math.log(sum(math.exp(v - m) for v in col))
        total += lse - col[c]
    return total / z.shape[1]


def ref_ce_probs(z, p):
    total = 0.0
    for j in range(z.shape[1]):
        col = z[:, j]
        m = max(col)
        lse = m + math.log(sum(math.exp(v - m) for v in col))
        total += sum(p[c, j] * (lse - col[c]) for c in range(z.shape[0]))
    return total / z.shape[1]


def ref_output(output, z):
    if output == "identity":
        return z
    if output == "sigmoid":
        return 1 / (1 + np.exp(-z))
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


rng = np.random.default_rng(0)
Z = rng.standard_normal((3, 5)) * 2
Y_REAL = rng.standard_normal((3, 5))
Y_PROB = rng.random((3, 5))
LABELS = np.array([0, 2, 1, 2, 0])
ONEHOT = np.eye(3)[:, LABELS]
SOFT = rng.random((3, 5))
SOFT /= SOFT.sum(axis=0)

CASES = [
    ("mse", "identity", Y_REAL, lambda z, y: ref_mse(z, y)),
    ("mse", "sigmoid", Y_PROB, lambda z, y: ref_mse(ref_output("sigmoid", z), y)),
    ("mse", "softmax", Y_PROB, lambda z, y: ref_mse(ref_output("softmax", z), y)),
    ("bce", "sigmoid", Y_PROB, ref_bce_logits),
    ("cross_entropy", "softmax", LABELS, ref_ce),
    ("cross_entropy", "softmax", ONEHOT, ref_ce_probs),
    ("cross_entropy", "softmax", SOFT, ref_ce_probs),
]
IDS = ["mse-identity", "mse-sigmoid", "mse-softmax", "bce", "ce-labels", "ce-onehot", "ce-soft"]


@pytest.mark.parametrize("name,output,y,ref", CASES, ids=IDS)
def test_value_matches_closed_form(name, output, y, ref):
    value = losses.loss_value(name, output, Z, y)
    assert abs(value - ref(Z, y)) <= 1e-13 * abs(ref(Z, y))


@pytest.mark.parametrize("name,output,y,ref", CASES, ids=IDS)
def test_gradient_matches_central_difference(name, output, y, ref):
    dz = Z.copy()
    losses.loss_and_dz(name, output, dz, y)
    numeric = np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        h = 6e-6 * max(1.0, abs(Z[idx]))
        zp, zm = Z.copy(), Z.copy()
        zp[idx] += h
        zm[idx] -= h
        numeric[idx] = (ref(zp, y) - ref(zm, y)) / (2 * h)
    np.testing.assert_allclose(dz, numeric, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name,output,y,ref", CASES, ids=IDS)
def test_complex_step_gives_the_gradient(name, output, y, ref):
    dz = Z.copy()
    losses.loss_and_dz(name, output, dz, y)
    h = 1e-30
    for idx in [(0, 0), (2, 3), (1, 4)]:
        zc = Z.astype(np.complex128)
        zc[idx] += 1j * h
        val = losses.loss_value(name, output, zc, y)
        assert abs(val.imag / h - dz[idx]) <= 1e-13 * max(1.0, abs(dz[idx]))


def test_fused_softmax_cross_entropy_is_softmax_minus_onehot():
    dz = Z.copy()
    losses.loss_and_dz("cross_entropy", "softmax", dz, LABELS)
    np.testing.assert_allclose(dz, (ref_output("softmax", Z) - ONEHOT) / Z.shape[1], rtol=1e-14, atol=1e-17)


def test_bce_and_ce_are_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 30.0, -800.0]])
    y = np.array([[1.0, 0.0, 1.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = losses.loss_value("bce", "sigmoid", z, y)
    assert value == pytest.approx((0 + 0 + math.log1p(math.exp(-30)) + 800) / 4, rel=1e-15)
    zc = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = losses.loss_value("cross_entropy", "softmax", zc, np.array([0, 0]))
    assert value == pytest.approx(1000.0, rel=1e-15)


@pytest.mark.parametrize("name,output,y,ref", CASES, ids=IDS)
def test_float32_stays_float32(name, output, y, ref):
    z = Z.astype(np.float32)
    yy = y if y.dtype.kind == "i" else y.astype(np.float32)
    value = losses.loss_and_dz(name, output, z, yy)
    assert z.dtype == np.float32
    assert abs(float(value) - ref(Z, y)) <= 1e-5 * abs(ref(Z, y))
