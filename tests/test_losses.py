"""Every loss against a naive per-sample NumPy reference, plus gradient edge cases and input
checks. The references are written one sample at a time in float64, straight from the
formulas in the docstrings, and share no code with the library.

Compilation dominates the run time of JAX tests, so the test data are fixed-shape NumPy draws
(hypothesis draws values, never shapes), the hyper-parameters of the value and property tests
are traced arguments of one shared jitted program per loss, and all gradient edge cases of a
dtype go through one jitted program vmapped over the scales.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory import losses

RTOL = 1e-5
B, N, M, D = 12, 5, 3, 16


# ----------------------------------------------------------------------------- references


def _unit(v):
    return v / np.linalg.norm(v)


def _log_softmax(z):
    z = z - z.max()
    return z - math.log(np.exp(z).sum())


def _ce(logits, y):
    """-sum_k y_k log softmax(logits)_k for one sample; y a distribution."""
    lp = _log_softmax(np.asarray(logits, np.float64))
    return -sum(yk * lpk for yk, lpk in zip(y, lp, strict=True) if yk > 0)


def _cosines(x, centres):
    return np.array([_unit(x) @ _unit(c) for c in centres])


def _arcface_f(cos, m):
    theta = math.acos(min(1.0, max(-1.0, cos)))
    return math.cos(theta + m) if theta + m <= math.pi else cos - m * math.sin(m)


def _sphereface_f(cos, m):
    theta = math.acos(min(1.0, max(-1.0, cos)))
    k = min(int(m * theta // math.pi), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def ref_margin(x, centres, y, *, scale, f):
    out = []
    for xi, yi in zip(x, y, strict=True):
        cos = _cosines(xi, centres)
        logits = scale * cos
        logits[yi] = scale * f(cos[yi])
        out.append(_ce(logits, np.eye(len(centres))[yi]))
    return np.array(out)


def ref_softmax(x, centres, ydist, *, scale):
    return np.array([_ce(scale * _cosines(xi, centres), yi)
                     for xi, yi in zip(x, ydist, strict=True)])


def ref_subcenter_arcface(x, centres, y, *, scale, margin):
    out = []
    for xi, yi in zip(x, y, strict=True):
        cos = np.array([max(_cosines(xi, sub)) for sub in centres])
        logits = scale * cos
        logits[yi] = scale * _arcface_f(cos[yi], margin)
        out.append(_ce(logits, np.eye(len(centres))[yi]))
    return np.array(out)


def ref_subcluster_adacos(x, centres, ydist, *, scale):
    out = []
    for xi, yi in zip(x, ydist, strict=True):
        e = np.array([[math.exp(scale * c) for c in _cosines(xi, sub)] for sub in centres])
        p = e.sum(axis=1) / e.sum()
        out.append(-sum(yk * math.log(pk) for yk, pk in zip(yi, p, strict=True) if yk > 0))
    return np.array(out)


def ref_adaproj(x, subspaces, ydist, *, scale):
    out = []
    for xi, yi in zip(x, ydist, strict=True):
        xt = _unit(xi)
        cos = []
        for vecs in subspaces:
            a = np.asarray(vecs, np.float64).T  # (D, M)
            proj = a @ np.linalg.lstsq(a, xt, rcond=None)[0]  # orthogonal projection
            cos.append(xt @ proj / np.linalg.norm(proj))
        out.append(_ce(scale * np.array(cos), yi))
    return np.array(out)


def ref_adacos_scale(x, centres, ydist, *, scale):
    b = []
    thetas = []
    for xi, yi in zip(x, ydist, strict=True):
        cos = _cosines(xi, centres)
        b.append(sum((1 - yk) * math.exp(scale * c) for yk, c in zip(yi, cos, strict=True)))
        thetas.append(sum(yk * math.acos(c) for yk, c in zip(yi, cos, strict=True)))
    return math.log(np.mean(b)) / math.cos(min(math.pi / 4, float(np.median(thetas))))


def ref_subcluster_scale(x, centres, ydist, *, scale, variant):
    b = []
    thetas = []
    for xi, yi in zip(x, ydist, strict=True):
        cos = np.array([_cosines(xi, sub) for sub in centres])  # (N, M)
        theta = np.arccos(cos)
        if variant == "faithful":
            b.append(sum((1 - yi[n]) * math.exp(scale * c) for n in range(len(centres))
                         for c in cos[n]))
            thetas.append(sum(yi[n] * theta[n].min() for n in range(len(centres))))
        else:
            b.append(np.exp(scale * cos).sum())
            thetas.append(np.count_nonzero(yi) * sum(yi[n] * theta[n].sum()
                                                     for n in range(len(centres))))
    return math.log(np.mean(b)) / math.cos(min(math.pi / 4, float(np.median(thetas))))


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, D)) * 3.0
    centres = rng.normal(size=(N, D))
    subcentres = rng.normal(size=(N, M, D))
    y = rng.integers(0, N, size=B)
    mix = rng.uniform(size=(B, 1))
    soft = mix * np.eye(N)[y] + (1 - mix) * np.eye(N)[np.roll(y, 1)]
    return (*(jnp.asarray(a, jnp.float32) for a in (x, centres, subcentres)),
            jnp.asarray(y, jnp.int32), jnp.asarray(soft, jnp.float32))


def _np(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


def _one_hot(y):
    return np.eye(N)[np.asarray(y)]


# One compiled program per loss, shared by every test with the same shapes: the
# hyper-parameters are traced arguments (their value checks run on the eager calls below).
_arcface = jax.jit(lambda x, c, y, s, m: losses.arcface(x, c, y, scale=s, margin=m))
_cosface = jax.jit(lambda x, c, y, s, m: losses.cosface(x, c, y, scale=s, margin=m))
_normalized_softmax = jax.jit(lambda x, c, y, s: losses.normalized_softmax(x, c, y, scale=s))


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("scale", [1.0, 16.0, 64.0])
@pytest.mark.parametrize("margin", [0.0, 0.3, 0.5, 1.2])
def test_arcface_matches_reference(batch, scale, margin):
    x, c, _, y, _ = batch
    got = _arcface(x, c, y, scale, margin)
    want = ref_margin(*_np(x, c), np.asarray(y), scale=scale, f=lambda t: _arcface_f(t, margin))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


def test_arcface_fallback_branch_is_exercised(batch):
    # Example 0 exactly opposite its centre: theta = pi, theta + m > pi, so the fallback
    # decides (cos(pi + m) would give -cos m = -0.88 instead of -1 - m sin m = -1.24).
    x, c, _, y, _ = batch
    x = np.array(x)
    x[0] = -np.asarray(c)[int(y[0])]
    got = _arcface(x, c, y, 4.0, 0.5)
    want = ref_margin(*_np(x, c), np.asarray(y), scale=4.0, f=lambda t: _arcface_f(t, 0.5))
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert _arcface_f(-1.0, 0.5) == pytest.approx(-1.0 - 0.5 * math.sin(0.5))


@pytest.mark.parametrize("margin", [0.0, 0.2, 0.35])
def test_cosface_matches_reference(batch, margin):
    x, c, _, y, _ = batch
    got = _cosface(x, c, y, 30.0, margin)
    want = ref_margin(*_np(x, c), np.asarray(y), scale=30.0, f=lambda t: t - margin)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("margin", [1, 2, 3, 4])
def test_sphereface_matches_reference(batch, margin):
    x, c, _, y, _ = batch
    got = losses.sphereface(x, c, y, scale=8.0, margin=margin)
    want = ref_margin(*_np(x, c), np.asarray(y), scale=8.0,
                      f=lambda t: _sphereface_f(t, margin))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


def test_sphereface_psi_is_continuous_and_decreasing():
    theta = jnp.linspace(0.0, math.pi, 2001)
    psi = losses.sphereface_target_logit(jnp.cos(theta), margin=4)
    assert np.all(np.diff(np.asarray(psi)) <= 1e-5)
    assert float(psi[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(psi[-1]) == pytest.approx(-7.0, abs=1e-4)


@pytest.mark.parametrize("fn", [losses.normalized_softmax, losses.adacos])
@pytest.mark.parametrize("soft", [False, True])
def test_normalized_softmax_and_adacos_match_reference(batch, fn, soft):
    x, c, _, y, ysoft = batch
    labels = ysoft if soft else y
    got = fn(x, c, labels, scale=10.0)
    want = ref_softmax(*_np(x, c), np.asarray(ysoft) if soft else _one_hot(y), scale=10.0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_subcenter_arcface_matches_reference(batch, margin):
    x, _, cs, y, _ = batch
    got = losses.subcenter_arcface(x, cs, y, scale=20.0, margin=margin)
    want = ref_subcenter_arcface(*_np(x, cs), np.asarray(y), scale=20.0, margin=margin)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("soft", [False, True])
def test_subcluster_adacos_matches_reference(batch, soft):
    x, _, cs, y, ysoft = batch
    labels = ysoft if soft else y
    got = losses.subcluster_adacos(x, cs, labels, scale=7.0)
    want = ref_subcluster_adacos(*_np(x, cs), np.asarray(ysoft) if soft else _one_hot(y),
                                 scale=7.0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("subspace_dim", [1, 3])
def test_adaproj_matches_reference(batch, soft, subspace_dim):
    x, _, _, y, ysoft = batch
    spaces = np.random.default_rng(7).normal(size=(N, subspace_dim, D)).astype(np.float32)
    labels = ysoft if soft else y
    got = losses.adaproj(x, spaces, labels, scale=9.0)
    want = ref_adaproj(*_np(x, spaces), np.asarray(ysoft) if soft else _one_hot(y), scale=9.0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("soft", [False, True])
def test_adacos_scale_matches_reference(batch, soft):
    x, c, _, y, ysoft = batch
    labels = ysoft if soft else y
    got = losses.adacos_scale(x, c, labels, scale=losses.adacos_fixed_scale(N))
    want = ref_adacos_scale(*_np(x, c), np.asarray(ysoft) if soft else _one_hot(y),
                            scale=losses.adacos_fixed_scale(N))
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("variant", ["faithful", "code"])
@pytest.mark.parametrize("soft", [False, True])
def test_subcluster_adacos_scale_matches_reference(batch, variant, soft):
    x, _, cs, y, ysoft = batch
    labels = ysoft if soft else y
    s0 = losses.adacos_fixed_scale(N, M)
    got = losses.subcluster_adacos_scale(x, cs, labels, scale=s0, variant=variant)
    want = ref_subcluster_scale(*_np(x, cs), np.asarray(ysoft) if soft else _one_hot(y),
                                scale=s0, variant=variant)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_adacos_scale_log_sum_exp_form_survives_huge_scales(batch):
    x, c, _, y, _ = batch
    s = losses.adacos_scale(x, c, y, scale=1e4)  # e^{1e4 cos} overflows any float
    assert np.isfinite(float(s))


def test_adacos_fixed_scale_formula():
    assert losses.adacos_fixed_scale(10) == pytest.approx(math.sqrt(2) * math.log(9))
    assert losses.adacos_fixed_scale(4, 16) == pytest.approx(math.sqrt(2) * math.log(63))
    with pytest.raises(ValueError, match="N M >= 3"):
        losses.adacos_fixed_scale(2)


def test_subcluster_adacos_with_one_subcluster_is_adacos(batch):
    x, c, _, y, ysoft = batch
    for labels in (y, ysoft):
        np.testing.assert_allclose(losses.subcluster_adacos(x, c[:, None], labels, scale=5.0),
                                   losses.adacos(x, c, labels, scale=5.0), rtol=1e-6)


def test_subcenter_arcface_with_one_subcentre_is_arcface(batch):
    x, c, _, y, _ = batch
    np.testing.assert_allclose(losses.subcenter_arcface(x, c[:, None], y, scale=5.0, margin=0.4),
                               _arcface(x, c, y, 5.0, 0.4), rtol=1e-6)


# ----------------------------------------------------------------------------- compactness


def test_compactness_is_the_chord_identity(batch):
    x, c, cs, y, _ = batch
    xn, cn = _np(x, c)
    want = [np.sum((_unit(xi) - _unit(cn[yi])) ** 2) for xi, yi in zip(xn, np.asarray(y),
                                                                        strict=True)]
    np.testing.assert_allclose(losses.compactness(x, c, y), want, rtol=1e-5, atol=1e-6)
    sub = [min(np.sum((_unit(xi) - _unit(v)) ** 2) for v in np.asarray(cs, np.float64)[yi])
           for xi, yi in zip(xn, np.asarray(y), strict=True)]
    np.testing.assert_allclose(losses.compactness(x, cs, y), sub, rtol=1e-5, atol=1e-6)


def test_deep_svdd_one_class_and_soft_boundary(batch):
    x = np.asarray(batch[0], np.float64)
    c = x.mean(axis=0)
    d2 = np.array([np.sum((xi - c) ** 2) for xi in x])
    np.testing.assert_allclose(losses.deep_svdd(x, c), d2, rtol=1e-5)
    r, nu = 3.0, 0.2
    want = np.array([r**2 + max(0.0, di - r**2) / nu for di in d2])
    np.testing.assert_allclose(losses.deep_svdd(x, c, radius=r, nu=nu), want, rtol=1e-5)


def test_deep_svdd_centre_pushes_small_entries_to_eps():
    x = jnp.array([[0.01, -0.02, 0.5, 0.0], [0.03, -0.04, 0.7, 0.0]])
    np.testing.assert_allclose(losses.deep_svdd_centre(x, eps=0.1), [0.1, -0.1, 0.6, 0.1])


def test_soft_boundary_radius_is_the_distance_quantile():
    d = np.arange(1.0, 11.0)
    assert losses.soft_boundary_radius(d**2, nu=0.1) == pytest.approx(np.quantile(d, 0.9))


# ----------------------------------------------------------------------------- gradients

EDGE_LOSSES = {
    "normalized_softmax": lambda x, c, y, s: losses.normalized_softmax(x, c, y, scale=s),
    "arcface": lambda x, c, y, s: losses.arcface(x, c, y, scale=s, margin=0.5),
    "cosface": lambda x, c, y, s: losses.cosface(x, c, y, scale=s, margin=0.35),
    "sphereface": lambda x, c, y, s: losses.sphereface(x, c, y, scale=s, margin=4),
    "adacos": lambda x, c, y, s: losses.adacos(x, c, y, scale=s),
    "subcenter_arcface": lambda x, c, y, s: losses.subcenter_arcface(
        x, jnp.stack([c, jnp.roll(c, 1, axis=0)], axis=1), y, scale=s, margin=0.5),
    "subcluster_adacos": lambda x, c, y, s: losses.subcluster_adacos(
        x, jnp.stack([c, jnp.roll(c, 1, axis=0)], axis=1), y, scale=s),
    "adaproj": lambda x, c, y, s: losses.adaproj(x, c[:, None], y, scale=s),
    "compactness": lambda x, c, y, s: losses.compactness(x, c, y),
    "deep_svdd": lambda x, c, y, s: losses.deep_svdd(x, c[0]),
}


def _edge_inputs(dtype):
    c = jnp.eye(4, 6, dtype=dtype)
    x = jnp.stack([
        c[0],                      # exactly on its centre: theta = 0
        -c[1],                     # exactly opposite its centre: theta = pi
        jnp.zeros(6, dtype),       # zero vector
        c[3] * 1e-3 + c[2],        # nearly on another centre
    ])
    return x, c, jnp.array([0, 1, 2, 3])


EDGE_SCALES = (1.0, 64.0, 1e3)


@functools.cache
def _edge_gradients(dtype):
    """{loss: (values, grads w.r.t. x, grads w.r.t. centres)}, each with a leading axis over
    EDGE_SCALES: every loss of EDGE_LOSSES through one jitted program, vmapped over s."""
    x, c, y = _edge_inputs(dtype)

    def every_loss(x, c, scale):
        out = {}
        for name, fn in EDGE_LOSSES.items():
            def total(x, c, fn=fn):
                return jnp.sum(fn(x, c, y, scale).astype(jnp.float32))
            value, (gx, gc) = jax.value_and_grad(total, argnums=(0, 1))(x, c)
            out[name] = value, gx, gc
        return out

    program = jax.jit(jax.vmap(every_loss, in_axes=(None, None, 0)))
    out = program(x, c, jnp.asarray(EDGE_SCALES, jnp.float32))
    return jax.tree.map(lambda a: np.asarray(a, np.float32), out)


@pytest.mark.parametrize("name", sorted(EDGE_LOSSES))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("scale", EDGE_SCALES)
def test_gradients_finite_at_the_edges(name, dtype, scale):
    value, gx, gc = (a[EDGE_SCALES.index(scale)] for a in _edge_gradients(dtype)[name])
    assert np.isfinite(value)
    assert np.all(np.isfinite(gx)), gx
    assert np.all(np.isfinite(gc)), gc


@functools.cache
def _edge_scale_updates():
    x, c, y = _edge_inputs(jnp.float32)
    cs = jnp.stack([c, jnp.roll(c, 1, axis=0)], axis=1)
    return jax.jit(lambda x, c, cs: {
        **{variant: losses.subcluster_adacos_scale(x, cs, y, scale=1e3, variant=variant)
           for variant in ("faithful", "code")},
        "adacos": losses.adacos_scale(x, c, y, scale=1e3),
    })(x, c, cs)


@pytest.mark.parametrize("variant", ["faithful", "code"])
def test_scale_updates_finite_at_the_edges(variant):
    updates = _edge_scale_updates()
    assert np.isfinite(float(updates[variant]))
    assert np.isfinite(float(updates["adacos"]))


def test_losses_jit_and_keep_value():
    x, c, y = _edge_inputs(jnp.float32)
    fn = jax.jit(lambda x: losses.arcface(x, c, y, scale=30.0, margin=0.5))
    np.testing.assert_allclose(fn(x), losses.arcface(x, c, y, scale=30.0, margin=0.5),
                               rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- properties


def _normal(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1.0, 64.0),
       margin=st.floats(0.0, 0.8))
def test_margin_losses_dominate_the_margin_free_loss(seed, scale, margin):
    # f(theta) <= cos(theta) for ArcFace and CosFace, so the margin can only raise the loss.
    rng = np.random.default_rng(seed)
    x, c, y = _normal(rng, 8, 5), _normal(rng, 4, 5), rng.integers(0, 4, size=8)
    base = _normalized_softmax(x, c, y, scale)
    assert np.all(_arcface(x, c, y, scale, margin) >= base - 1e-5)
    assert np.all(_cosface(x, c, y, scale, margin) >= base - 1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), factor=st.floats(0.01, 100.0))
def test_losses_invariant_to_embedding_norm_and_rotation(seed, factor):
    rng = np.random.default_rng(seed)
    x, c, y = _normal(rng, 6, 4), _normal(rng, 3, 4), rng.integers(0, 3, size=6)
    q = np.linalg.qr(rng.normal(size=(4, 4)))[0].astype(np.float32)
    base = _arcface(x, c, y, 10.0, 0.3)
    np.testing.assert_allclose(_arcface(np.float32(factor) * x, c, y, 10.0, 0.3), base,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_arcface(x @ q, c @ q, y, 10.0, 0.3), base,
                               rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": jnp.array([0, 1, 5])}, r"labels must lie in \[0, 3\]"),
        ({"labels": jnp.array([0, -1, 2])}, r"labels must lie in \[0, 3\]"),
        ({"labels": jnp.array([0, 1])}, r"labels must have shape \(3,\)"),
        ({"centres": jnp.ones((4, 5))}, "centres have dimension 5"),
        ({"embeddings": jnp.ones((3,))}, "embeddings must have 2 dimensions"),
        ({"embeddings": jnp.full((3, 6), jnp.nan)}, "embeddings contains 18 non-finite"),
        ({"embeddings": jnp.ones((0, 6)), "labels": jnp.zeros((0,), int)}, "embeddings is empty"),
        ({"labels": jnp.full((3, 4), 0.25)}, "soft .* labels are only defined"),
        ({"scale": -1.0}, "scale must be >= 0"),
        ({"scale": float("nan")}, "scale must be finite"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    args = {"embeddings": jnp.ones((3, 6)), "centres": jnp.eye(4, 6),
            "labels": jnp.array([0, 1, 2]), "scale": 10.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        losses.arcface(args["embeddings"], args["centres"], args["labels"],
                       scale=args["scale"], margin=0.5)


def test_bad_soft_labels_are_rejected():
    x, c = jnp.ones((2, 6)), jnp.eye(4, 6)
    with pytest.raises(ValueError, match="must sum to 1"):
        losses.adacos(x, c, jnp.full((2, 4), 0.5), scale=3.0)
    with pytest.raises(ValueError, match=r"soft labels must have shape \(2, 4\)"):
        losses.adacos(x, c, jnp.full((2, 3), 1 / 3), scale=3.0)
    with pytest.raises(ValueError, match="variant must be"):
        losses.subcluster_adacos_scale(x, c[:, None], jnp.array([0, 1]), scale=3.0,
                                       variant="paper")


def test_value_checks_are_skipped_under_jit_but_shape_checks_are_not():
    c = jnp.eye(4, 6)
    fn = jax.jit(lambda x, y: losses.arcface(x, c, y, scale=3.0))
    fn(jnp.ones((2, 6)), jnp.array([0, 9]))  # out-of-range label: unchecked under jit
    with pytest.raises(ValueError, match="centres have dimension"):
        fn(jnp.ones((2, 5)), jnp.array([0, 1]))
