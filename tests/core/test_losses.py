"""Losses against independent closed forms (PyTorch's definitions, mean
reduction), their gradients against central differences, and stability."""

import decimal
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlpckpt.core import _losses as losses


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


# -- relative accuracy against a high-precision reference (issue 11, item 5) --

# decimal (the standard library) with 400 digits: ln(1 + exp(-700)) and the
# label's dz mass p - 1 ~ -1e-304 at a gap of 700 need ~320 of them
HP = decimal.Context(prec=400)
EPS = np.finfo(np.float64).eps
# log-spaced magnitudes up to 700, both signs, and 0
GRID = np.concatenate([np.geomspace(1e-3, 700, 25), -np.geomspace(1e-3, 700, 25), [0.0]])
BCE_TARGETS = [0.0, 1.0, 0.3, 0.75, 0.5, 1 - 2.0**-30, 2.0**-40]


def _hp(x):
    return decimal.Decimal(float(x))  # exact: every float64 is a binary fraction


def _hp_softplus(x):
    return (1 + x.exp()).ln() if x < 0 else x + (1 + (-x).exp()).ln()


def hp_bce(z, y):
    """Loss and dz of BCE-with-logits, mean over all elements, in 400 digits."""
    with decimal.localcontext(HP):
        n, loss, dz = z.size, decimal.Decimal(0), []
        for a, b in zip(map(_hp, z.ravel()), map(_hp, y.ravel())):
            loss += (1 - b) * _hp_softplus(a) + b * _hp_softplus(-a)
            dz.append(((1 - b) / (1 + (-a).exp()) - b / (1 + a.exp())) / n)
        return loss / n, np.array(dz, dtype=object).reshape(z.shape)


def hp_ce(z, y):
    """Loss and dz of softmax cross-entropy (labels or probabilities), mean
    over columns, in 400 digits."""
    n_out, batch = z.shape
    probs = np.eye(n_out)[:, y] if y.ndim == 1 else y
    loss, dz = decimal.Decimal(0), np.empty(z.shape, dtype=object)
    with decimal.localcontext(HP):
        for j in range(batch):
            col, p = [_hp(v) for v in z[:, j]], [_hp(v) for v in probs[:, j]]
            top = max(col)
            lse = top + sum((v - top).exp() for v in col).ln()
            loss += sum(pc * (lse - v) for pc, v in zip(p, col))
            for c in range(n_out):
                dz[c, j] = (sum(p) * (col[c] - lse).exp() - p[c]) / batch
        return loss / batch, dz


def _rel_errors(value, dz, ref_value, ref_dz):
    """Relative error of the loss, and the worst over dz's entries (exact zeros skipped)."""
    with decimal.localcontext(HP):
        rel = float(abs((_hp(value) - ref_value) / ref_value)) if ref_value != 0 else float(value)
        worst = 0.0
        for got, want in zip(dz.ravel(), ref_dz.ravel()):
            if want != 0:
                worst = max(worst, float(abs((_hp(got) - want) / want)))
            else:
                assert got == 0
    return rel, worst


def _check(name, output, z, y, ref):
    dz = z.copy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = losses.loss_and_dz(name, output, dz, y)
    rel, worst = _rel_errors(value, dz, *ref(z, y))
    assert rel <= 1e-12, (z, y, value, rel)
    assert worst <= 1e-12, (z, y, worst)


@pytest.mark.parametrize("target", BCE_TARGETS)
def test_bce_is_relatively_accurate_per_element(target):
    # logits +-40 on correct targets: the loss is 4.2e-18 and
    # sigma(40) - 1 = -4.2e-18, which max(z,0) - z y + log1p(.) and
    # sigma(z) - y round to 0 (relative error 1)
    for v in GRID:
        _check("bce", "sigmoid", np.array([[v]]), np.array([[target]]), hp_bce)


@pytest.mark.slow
def test_bce_is_relatively_accurate_over_a_batch():
    rng = np.random.default_rng(11)
    z = rng.permutation(np.tile(GRID, 3)).reshape(3, -1)
    for y in (np.where(z > 0, 1.0, 0.0),  # every prediction confident and correct
              rng.choice(BCE_TARGETS, size=z.shape),
              rng.random(z.shape)):
        _check("bce", "sigmoid", z, y, hp_bce)


def _confident_logits(rng, gaps, n_out=4, labels=None):
    """Columns whose entry ``labels[j]`` stands ``gaps[j]`` above the others."""
    batch = len(gaps)
    z = rng.uniform(-1, 1, size=(n_out, batch))
    labels = rng.integers(0, n_out, size=batch) if labels is None else labels
    z[labels, np.arange(batch)] += gaps
    return z, labels


CE_GAPS = np.concatenate([np.geomspace(1e-2, 700, 20), -np.geomspace(1e-2, 700, 8)])


@pytest.mark.parametrize("seed", range(3))
def test_cross_entropy_labels_is_relatively_accurate_at_confident_predictions(seed):
    # true class 40 above the others: the loss is ~3 exp(-40) and its dz
    # -3 exp(-40) / S, which log(1 + 3e-18) and p_y - 1 round to 0
    rng = np.random.default_rng(seed)
    z, labels = _confident_logits(rng, CE_GAPS)
    for j in range(z.shape[1]):  # column by column, then the batch
        _check("cross_entropy", "softmax", z[:, j:j + 1], labels[j:j + 1], hp_ce)
    _check("cross_entropy", "softmax", z, labels, hp_ce)


@pytest.mark.parametrize("seed", range(3))
def test_cross_entropy_probabilities_is_relatively_accurate_at_confident_predictions(seed):
    rng = np.random.default_rng(seed)
    z, labels = _confident_logits(rng, CE_GAPS)
    onehot = np.eye(z.shape[0])[:, labels]
    soft = onehot * (1 - 2.0**-20) + (1 - onehot) * (2.0**-20 / (z.shape[0] - 1))
    for y in (onehot, soft):
        for j in range(z.shape[1]):
            _check("cross_entropy", "softmax", z[:, j:j + 1], y[:, j:j + 1], hp_ce)
        _check("cross_entropy", "softmax", z, y, hp_ce)


@settings(deadline=None, max_examples=60)
@given(log_mag=st.floats(-3, np.log10(700)), negative=st.booleans(),
       target=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1)))
@example(log_mag=math.log10(40), negative=False, target=1.0)  # the case
@example(log_mag=2.5, negative=False, target=1 - 2.0**-30)
def test_bce_relative_accuracy_property(log_mag, negative, target):
    # the loss (a sum of terms >= 0) always to 1e-12; dz to 1e-12 of itself
    # plus the rounding of its two terms, (1 - y) sigma(z) and y sigma(-z):
    # the only loss of accuracy left is where sigma(z) ~ y (targets condition it)
    z = np.array([[-(10.0**log_mag) if negative else 10.0**log_mag]])
    y = np.array([[target]])
    dz = z.copy()
    value = losses.loss_and_dz("bce", "sigmoid", dz, y)
    ref_value, ref_dz = hp_bce(z, y)
    with decimal.localcontext(HP):
        assert abs(_hp(value) - ref_value) <= decimal.Decimal(1e-12) * ref_value
        a = 1 / (1 + (-_hp(z[0, 0])).exp())
        scale = (1 - _hp(target)) * a + _hp(target) * (1 - a)
        bound = decimal.Decimal(1e-12) * abs(ref_dz[0, 0]) + decimal.Decimal(4 * EPS) * scale
        assert abs(_hp(dz[0, 0]) - ref_dz[0, 0]) <= bound


@settings(deadline=None, max_examples=40)
@given(gap=st.floats(-700, 700), n_out=st.integers(2, 6), seed=st.integers(0, 2**32 - 1),
       labels=st.booleans())
def test_cross_entropy_relative_accuracy_property(gap, n_out, seed, labels):
    rng = np.random.default_rng(seed)
    z, lab = _confident_logits(rng, np.array([gap]), n_out=n_out)
    y = lab if labels else np.eye(n_out)[:, lab]
    _check("cross_entropy", "softmax", z, y, hp_ce)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,targets", [("bce", "dense"), ("cross_entropy", "labels"),
                                          ("cross_entropy", "onehot")])
@pytest.mark.parametrize("n_out,batch", [(2, 3), (10, 128), (3, 5000), (2, 60000), (40, 2000)])
def test_loss_transient_predicts_the_loss_peak(measured_peak, dtype, loss, targets, n_out, batch):
    # the accurate forms keep one (n_out, batch) temporary and a few (batch,)
    # vectors (the top entries and their columns for cross-entropy): the
    # prediction of memory.loss_transient holds, tight, at large batches too
    from mlpckpt.planning import _memory as memory

    rng = np.random.default_rng(batch)
    z = (30 * rng.standard_normal((n_out, batch))).astype(dtype)
    if targets == "labels":
        y = rng.integers(0, n_out, size=batch)
    else:
        y = rng.random((n_out, batch)).astype(dtype)
        if loss == "cross_entropy":
            y /= y.sum(axis=0)
    output = losses.output_for(loss)
    work = np.empty_like(z)

    def run():
        np.copyto(work, z)
        losses.loss_and_dz(loss, output, work, y)

    measured = measured_peak(run)
    predicted = memory.loss_transient(loss, output, n_out, batch, z.itemsize, targets)
    assert measured <= predicted <= 1.05 * measured + 64 * 1024, (measured, predicted)
