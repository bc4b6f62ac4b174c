"""The bounds against the loss implementations. Few compilations: configurations are built in
NumPy, the cases of a test go through one jitted program (hyper-parameters traced), and the
random-configuration samplers are compiled once per test."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory import bounds, losses
from asdtheory.geometry import simplex_centres

EPS32 = float(np.finfo(np.float32).eps)


def _antipodal_configuration(compactness, num_classes, dim=5):
    """x~ at compactness c from c_0 = e_0; every non-target centre at -x~ (the tight case)."""
    cos = 1.0 - compactness / 2.0
    x = np.zeros(dim, np.float32)
    x[:2] = cos, math.sqrt(max(0.0, 1.0 - cos * cos))
    centres = np.concatenate([np.eye(dim, dtype=np.float32)[:1],
                              np.tile(-x[None], (num_classes - 1, 1))])
    return x[None], centres, np.array([0], np.int32)


ANTIPODAL_LOSSES = {
    "normalized_softmax": (lambda x, c, y, m: losses.normalized_softmax(x, c, y, scale=6.0),
                           "cosine"),
    "cosface": (lambda x, c, y, m: losses.cosface(x, c, y, scale=6.0, margin=m), "cosface"),
    "arcface": (lambda x, c, y, m: losses.arcface(x, c, y, scale=6.0, margin=m), "arcface"),
}


@jax.jit
def _antipodal_case(x, centres, y, margin):
    """Each loss, the compactness and each loss's lower bound at that compactness."""
    c = losses.compactness(x, centres, y)[0]
    return c, {name: (loss_fn(x, centres, y, margin)[0],
                      bounds.loss_lower_bound(c, num_classes=5, scale=6.0, margin=margin,
                                              target_logit=target_logit))
               for name, (loss_fn, target_logit) in ANTIPODAL_LOSSES.items()}


@pytest.mark.parametrize("name", sorted(ANTIPODAL_LOSSES))
@pytest.mark.parametrize("compactness", [0.05, 1.0, 2.5, 3.9])
def test_loss_lower_bound_is_attained_with_antipodal_centres(name, compactness):
    # With all non-target centres at -x~ every non-target cosine is -1: L equals the bound.
    x, centres, y = _antipodal_configuration(compactness, num_classes=5)
    c, out = _antipodal_case(x, centres, y, 0.3)
    loss, bound = (float(v) for v in out[name])
    assert float(c) == pytest.approx(compactness, abs=1e-5)
    assert loss == pytest.approx(bound, rel=1e-4, abs=1e-6), name


@settings(max_examples=60, deadline=None)
@given(c=st.floats(0.02, 3.98), n=st.integers(2, 64), s=st.floats(1.0, 12.0),
       m=st.floats(0.0, 0.8), target_logit=st.sampled_from(["cosine", "cosface", "arcface"]))
def test_compactness_bound_inverts_loss_lower_bound(c, n, s, m, target_logit):
    loss = bounds.loss_lower_bound(c, num_classes=n, scale=s, margin=m, target_logit=target_logit)
    g = float(bounds.compactness_bound(loss, num_classes=n, scale=s, margin=m,
                                       target_logit=target_logit))
    # Only a loss level reachable by some compactness inverts back to it; the ArcFace
    # fallback jump leaves values of L that no angle produces, and g of those is the jump.
    if target_logit == "cosface" and 1.0 - c / 2.0 - m < -1.0:
        return  # f = cos - m can go below -1: cosine bound is then 4 (no information)
    assert g == pytest.approx(c, abs=2e-3)


def test_compactness_bound_matches_closed_form_without_margin():
    loss = jnp.array([1e-6, 0.01, 0.5, 2.0, 30.0])
    n, s = 10, 8.0
    expected = np.clip(4.0 - 2.0 / s * np.log((n - 1) / np.expm1(np.asarray(loss, np.float64))),
                       0.0, 4.0)
    got = bounds.compactness_bound(loss, num_classes=n, scale=s)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_compactness_bound_is_increasing_in_the_loss():
    loss = jnp.linspace(1e-4, 20.0, 2001)
    for target_logit in ("cosine", "cosface", "arcface"):
        g = np.asarray(bounds.compactness_bound(loss, num_classes=7, scale=5.0, margin=0.5,
                                                target_logit=target_logit))
        assert np.all(np.diff(g) >= -1e-6), target_logit
        assert g[0] < 0.5 and g[-1] == pytest.approx(4.0), target_logit


def test_target_logit_lower_bound_is_accurate_for_tiny_and_huge_losses():
    # a(L) = b + (log(N - 1) - log(e^L - 1)) / s is -log(e^L - 1) for N = 2, s = 1, b = 0:
    # accurate where e^L - 1 underflows to L (L -> 0) and where e^L overflows float32.
    x = jnp.array([1e-30, 1e-8, 1e-3, 0.5, 1.0, 1.5, 10.0, 80.0, 200.0], jnp.float32)
    ref = -np.log(np.expm1(np.asarray(x, np.float64)))
    ref[-1] = -200.0  # log(e^200 - 1) = 200 to float64 precision (expm1 overflows)
    got = bounds.target_logit_lower_bound(x, num_classes=2, scale=1.0, min_logit=0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-6)


SIMPLEX_CASES = ((2, 0.7), (2, 3.1), (6, 0.0))  # (N, compactness)


@jax.jit
def _simplex_cases():
    """(loss, l(c), g(loss)) per case of SIMPLEX_CASES, in one program."""
    s, out = 5.0, []
    for n, compactness in SIMPLEX_CASES:
        centres = simplex_centres(n, 6)
        # x~ in the plane of c_1 and a unit vector orthogonal to every centre (e_5, as n <= 6).
        cos = 1.0 - compactness / 2.0
        x = cos * centres[1] + math.sqrt(1.0 - cos * cos) * jnp.eye(6)[5]
        loss = losses.normalized_softmax(x[None], centres, jnp.array([1]), scale=s)[0]
        out.append((loss, bounds.simplex_loss_lower_bound(compactness, num_classes=n, scale=s),
                    bounds.simplex_compactness_bound(loss, num_classes=n, scale=s)))
    return out


def test_simplex_bound_is_tight_for_two_classes_and_at_the_centre():
    s = 5.0
    for (n, compactness), values in zip(SIMPLEX_CASES, _simplex_cases(), strict=True):
        loss, ell, g = (float(v) for v in values)
        assert loss == pytest.approx(ell, rel=1e-5, abs=4 * EPS32 * s), (n, compactness)
        assert g == pytest.approx(compactness, abs=1e-4), (n, compactness)


def test_bounds_hold_against_the_loss_implementations_on_random_configurations():
    def evaluate(cfg):
        def one(x, c, y, s, m):
            centre = c[:, 0]
            return {
                "arcface": losses.arcface(x, centre, y, scale=s, margin=m)[0],
                "cosface": losses.cosface(x, centre, y, scale=s, margin=m)[0],
                "subcluster_adacos": losses.subcluster_adacos(x, c, y, scale=s)[0],
                "compactness": losses.compactness(x, centre, y)[0],
                "sub_compactness": losses.compactness(x, c, y)[0],
            }
        return jax.vmap(one)(cfg.embeddings, cfg.centres, cfg.labels, cfg.scale, cfg.margin) | {
            "scale": cfg.scale, "margin": cfg.margin}

    out = bounds.map_configurations(evaluate, jax.random.key(0), 600, chunk_size=300,
                                    num_classes=5, max_dim=16, num_subcentres=2)
    tol = 16 * EPS32 * out["scale"]
    cases = (("arcface", "arcface", "compactness"), ("cosface", "cosface", "compactness"),
             ("subcluster_adacos", "cosine", "sub_compactness"))
    lower = jax.jit(lambda out: {name: bounds.loss_lower_bound(
        out[comp], num_classes=5, scale=out["scale"], margin=out["margin"],
        target_logit=target_logit) for name, target_logit, comp in cases})(out)
    for name, _, _ in cases:
        ell = lower[name]
        assert np.all(out[name] >= np.asarray(ell) - tol), name
        # The configurations reach the bound's neighbourhood, so the check is not vacuous.
        assert np.min(out[name] - np.asarray(ell)) < 1e-3, name
    assert out["compactness"].min() < 0.05 and out["compactness"].max() > 3.9


def test_check_bound_counts_deficits_as_a_per_configuration_loop():
    rng = np.random.default_rng(5)
    compactness = rng.uniform(0.0, 4.0, 40).astype(np.float32)
    scale = rng.uniform(1.0, 32.0, 40).astype(np.float32)
    ell = np.asarray(bounds.loss_lower_bound(compactness, num_classes=6, scale=scale,
                                             margin=0.3, target_logit="arcface"))
    # Losses on the bound, 3 and 40 eps*s below it (rounding, violation), 0.005 and 0.5 above.
    offsets = rng.choice([0.0, -3.0, -40.0, 0.005, 0.5], size=40)
    in_eps = np.abs(offsets) > 1
    loss = np.where(in_eps, ell + offsets * EPS32 * scale, ell + offsets).astype(np.float32)
    got = bounds.check_bound(loss, compactness, num_classes=6, scale=scale, margin=0.3,
                             target_logit="arcface")
    deficits = [(float(e) - float(v)) / (EPS32 * float(s))
                for e, v, s in zip(ell, loss, scale, strict=True)]
    assert got["configs"] == 40
    assert got["violations"] == sum(d > 16 for d in deficits) == np.sum(offsets == -40.0)
    assert got["strict"] == sum(d > 0 for d in deficits)
    assert got["max_deficit"] == pytest.approx(max(deficits), rel=1e-3)
    assert got["near_tight_share"] == np.mean([float(v) - float(e) < 0.01
                                               for e, v in zip(ell, loss, strict=True)])
    simplex = bounds.check_bound(loss, compactness, num_classes=6, scale=scale, simplex=True)
    assert simplex["configs"] == 40 and simplex != got


def test_map_configurations_picks_the_largest_chunk_that_fits():
    calls = []

    def evaluate(cfg):
        calls.append(cfg.centres.shape)
        return {"scale": cfg.scale}

    out = bounds.map_configurations(evaluate, jax.random.key(0), 30, num_classes=3,
                                    max_dim=bounds.CHUNK_FLOATS // 30, num_subcentres=4)
    # 3 x 4 x CHUNK_FLOATS // 30 floats per configuration: 2 fit, and 2 divides 30.
    assert calls == [(2, 3, 4, bounds.CHUNK_FLOATS // 30)]
    assert out["scale"].shape == (30,)
    fixed = bounds.map_configurations(lambda cfg: {"scale": cfg.scale}, jax.random.key(0), 30,
                                      chunk_size=2, num_classes=3,
                                      max_dim=bounds.CHUNK_FLOATS // 30, num_subcentres=4)
    np.testing.assert_array_equal(out["scale"], fixed["scale"])


def test_random_configurations_structure():
    sample = jax.jit(lambda k: bounds.random_configurations(
        k, 50, num_classes=4, max_dim=12, num_subcentres=3, scale_range=(2.0, 8.0),
        margin_range=(0.1, 0.2)))
    key = jax.random.key(3)
    cfg = bounds.Configurations(*(np.asarray(a) for a in sample(key)))
    assert cfg.embeddings.shape == (50, 1, 12) and cfg.centres.shape == (50, 4, 3, 12)
    np.testing.assert_allclose(np.linalg.norm(cfg.embeddings, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(cfg.centres, axis=-1), 1.0, atol=1e-5)
    dim = cfg.dim
    padded = np.arange(12)[None, :] >= dim[:, None]
    assert np.all(cfg.embeddings[:, 0][padded] == 0.0)
    assert np.all(cfg.centres.transpose(0, 3, 1, 2)[padded] == 0.0)
    assert dim.min() >= 2 and dim.max() <= 12
    assert np.all((cfg.scale >= 2.0) & (cfg.scale <= 8.0))
    assert np.all((cfg.margin >= 0.1) & (cfg.margin <= 0.2))
    assert np.all((cfg.labels >= 0) & (cfg.labels < 4))
    np.testing.assert_array_equal(cfg.centres, sample(key).centres)


def test_random_simplex_configurations_use_the_simplex():
    cfg = jax.jit(lambda k: bounds.random_configurations(k, 20, num_classes=6, max_dim=10,
                                                         centres="simplex"))(jax.random.key(1))
    cfg = bounds.Configurations(*(np.asarray(a) for a in cfg))
    assert np.all(cfg.dim >= 5)
    np.testing.assert_allclose(np.sum(cfg.centres, axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(cfg.embeddings, axis=-1), 1.0, atol=1e-5)


CONSTANT_EMBEDDING_LOSSES = {
    "normalized_softmax": lambda x, c, y, s: losses.normalized_softmax(x, c, y, scale=s),
    "arcface": lambda x, c, y, s: losses.arcface(x, c, y, scale=s, margin=0.5),
    "subcluster_adacos": lambda x, c, y, s: losses.subcluster_adacos(x, c[:, None], y, scale=s),
}


@jax.jit
def _constant_embedding_losses(x, centres, labels, scale):
    """The mean loss of each case for each loss, and the balanced tiny-scale mean loss."""
    mean_losses = {name: jax.vmap(lambda *a, f=f: jnp.mean(f(*a)))(x, centres, labels, scale)
                   for name, f in CONSTANT_EMBEDDING_LOSSES.items()}
    n, batch = centres.shape[1], x.shape[1]
    balanced = jnp.arange(batch) % n
    tiny = losses.normalized_softmax(x[0], centres[0], balanced, scale=1e-6)
    return mean_losses, jnp.mean(tiny)


def test_constant_embedding_mean_loss_is_at_least_the_prior_entropy():
    # 200 random cases at once: class prior, constant embedding, centres, scale.
    n, batch, cases = 5, 40, 200
    rng = np.random.default_rng(0)
    prior = rng.dirichlet(np.full(n, 0.5), size=cases)
    labels = jnp.asarray(np.stack([rng.choice(n, size=batch, p=p) for p in prior]))
    x = jnp.asarray(rng.normal(size=(cases, 1, 6)), jnp.float32) * jnp.ones((1, batch, 1))
    centres = jnp.asarray(rng.normal(size=(cases, n, 6)), jnp.float32)
    scale = jnp.asarray(rng.uniform(1.0, 30.0, size=cases), jnp.float32)
    empirical = np.stack([np.bincount(np.asarray(row), minlength=n) for row in labels])
    entropy = bounds.constant_embedding_bound(empirical)
    assert entropy.shape == (cases,)
    assert entropy[7] == pytest.approx(bounds.constant_embedding_bound(empirical[7]))
    mean_losses, tiny_scale = _constant_embedding_losses(x, centres, labels, scale)
    for name, mean_loss in mean_losses.items():
        assert np.all(np.asarray(mean_loss) >= entropy - 1e-5), name
    # The bound is attained when q = prior: balanced classes and s -> 0 give q uniform.
    assert float(tiny_scale) == pytest.approx(math.log(n), abs=1e-5)


def test_constant_embedding_bound_values():
    assert bounds.constant_embedding_bound(np.ones(7)) == pytest.approx(math.log(7))
    assert bounds.constant_embedding_bound([3, 0, 1]) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bounds.compactness_bound(0.5, num_classes=1, scale=2.0), "num_classes"),
        (lambda: bounds.compactness_bound(0.5, num_classes=3, scale=0.0), "scale"),
        (lambda: bounds.compactness_bound(0.5, num_classes=3, scale=2.0, margin=-0.1), "margin"),
        (lambda: bounds.compactness_bound(0.5, num_classes=3, scale=2.0, target_logit="sphere"),
         "target_logit"),
        (lambda: bounds.loss_lower_bound(jnp.nan, num_classes=3, scale=2.0), "compactness"),
        (lambda: bounds.constant_embedding_bound([0.0, 0.0]), "class_prior"),
        (lambda: bounds.constant_embedding_bound([[1.0, 2.0], [1.0, -1.0]]), "class_prior"),
        (lambda: bounds.constant_embedding_bound(3.0), "class_prior"),
        (lambda: bounds.random_configurations(jax.random.key(0), 4, num_classes=40, max_dim=8,
                                              centres="simplex"), "max_dim"),
        (lambda: bounds.random_configurations(jax.random.key(0), 4, num_classes=3,
                                              scale_range=(5.0, 1.0)), "scale_range"),
        (lambda: bounds.map_configurations(lambda c: {}, jax.random.key(0), 10, chunk_size=3,
                                           num_classes=2), "multiple"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("num_classes", [2, 4, 10])
def test_orthogonal_minimiser_angle_against_a_grid_search(num_classes):
    # Naive reference: x~ = cos(t) c_y - sin(t) u, u the normalised sum of the other centres;
    # the loss of the normalised softmax on a fine grid of t.
    n, s = num_classes, 5.0
    t = np.linspace(0.0, np.pi / 2, 200_001)
    others = -np.sin(t) / np.sqrt(n - 1)  # cosine to every other centre
    loss = np.log1p((n - 1) * np.exp(s * (others - np.cos(t))))
    assert bounds.orthogonal_minimiser_angle(n) == pytest.approx(t[np.argmin(loss)], abs=1e-4)


def test_sample_families_matches_a_per_configuration_loop_of_the_losses():
    key = jax.random.key(3)
    out = bounds.sample_families(key, {3: 6, 5: 4}, num_subcentres=2, max_dim=12)
    assert out["N"].tolist() == [3] * 6 + [5] * 4
    assert set(out) == {*bounds.FAMILIES, *bounds.COMPACTNESS, "scale", "margin", "N"}
    # group N draws from fold_in(key, N): redraw the configurations and compute one by one
    for n, start in ((3, 0), (5, 6)):
        count = int(np.sum(out["N"] == n))
        cfg = bounds.random_configurations(jax.random.fold_in(jax.random.fold_in(key, n), 0),
                                           count, num_classes=n, num_subcentres=2, max_dim=12)
        for i in range(count):
            x, c, y = cfg.embeddings[i], cfg.centres[i], cfg.labels[i]
            s, m = float(cfg.scale[i]), float(cfg.margin[i])
            expected = {
                "CosFace": losses.cosface(x, c[:, 0], y, scale=s, margin=m),
                "sub-cluster AdaCos": losses.subcluster_adacos(x, c, y, scale=s),
                "AdaProj": losses.adaproj(x, c, y, scale=s),
                "centre": losses.compactness(x, c[:, 0], y),
                "subspace": 2.0 - 2.0 * losses.subspace_cosines(x, c)[0, y[0]],
            }
            for name, value in expected.items():
                np.testing.assert_allclose(out[name][start + i], np.ravel(value)[0],
                                           rtol=1e-5, atol=1e-6, err_msg=name)
    # fold=False draws one group from the key itself
    unfolded = bounds.sample_families(key, {3: 6}, fold=False, num_subcentres=2, max_dim=12)
    assert not np.array_equal(unfolded["CosFace"], out["CosFace"][:6])
    direct = bounds.random_configurations(jax.random.fold_in(key, 0), 6, num_classes=3,
                                          num_subcentres=2, max_dim=12)
    np.testing.assert_array_equal(unfolded["scale"], direct.scale)


def test_sample_families_on_the_simplex_keeps_the_single_centre_families():
    out = bounds.sample_families(jax.random.key(1), {4: 8}, centres="simplex", max_dim=8)
    singles = {name for name, (_, kind, *_) in bounds.FAMILIES.items() if kind == "centre"}
    assert set(out) == singles | {"centre", "scale", "margin", "N"}
    # no configuration violates the simplex bound beyond rounding (notebook 01's check)
    for name in singles:
        checked = bounds.check_bound(out[name], out["centre"], num_classes=out["N"],
                                     scale=out["scale"], simplex=True)
        assert checked["configs"] == 8 and checked["violations"] == 0, name
    assert not np.array_equal(out["normalized softmax / AdaCos"], out["CosFace"])
