"""Training dynamics helpers against naive step-by-step references."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from asdtheory import dynamics, losses, metrics, models
from asdtheory.geometry import l2_normalize, random_centres


def _naive_trajectory(key, *, n, m, d, per_class, steps, lr, variant):
    """The documented recipe of scale_trajectory as a plain Python loop."""
    key_centres, key_x = jax.random.split(key)
    centres = random_centres(key_centres, n, d, num_subcentres=m)
    labels = jnp.repeat(jnp.arange(n, dtype=jnp.int32), per_class)
    x = l2_normalize(jax.random.normal(key_x, (labels.size, d)))
    scale = jnp.float32(losses.adacos_fixed_scale(n, m))
    tx = optax.adam(lr)
    opt_state = tx.init(x)
    scales, loss_values, medians = [], [], []
    for _ in range(steps):
        scale = losses.subcluster_adacos_scale(x, centres, labels, scale=scale, variant=variant)
        loss, grad = jax.value_and_grad(
            lambda x, s=scale: jnp.mean(losses.subcluster_adacos(x, centres, labels, scale=s)))(x)
        cos = np.asarray(l2_normalize(x) @ centres.reshape(-1, d).T).reshape(-1, n, m)
        own = cos[np.arange(labels.size), np.asarray(labels)].max(axis=-1)
        medians.append(np.degrees(np.median(np.arccos(own))))
        scales.append(float(scale))
        loss_values.append(float(loss))
        updates, opt_state = tx.update(grad, opt_state, x)
        x = optax.apply_updates(x, updates)
    return np.array(scales), np.array(loss_values), np.array(medians)


@pytest.mark.parametrize("variant", ["faithful", "code"])
def test_scale_trajectory_matches_a_naive_loop(variant):
    kw = {"n": 3, "m": 2, "d": 5, "per_class": 4, "steps": 6, "lr": 0.05}
    key = jax.random.key(3)
    records = dynamics.scale_trajectory(key, num_classes=kw["n"], num_subclusters=kw["m"],
                                        dim=kw["d"], samples_per_class=kw["per_class"],
                                        steps=kw["steps"], learning_rate=kw["lr"],
                                        variant=variant)
    scales, loss_values, medians = _naive_trajectory(key, variant=variant, **kw)
    assert set(records) == {"scale", "loss", "median_target_angle", "mean_max_other_cos"}
    np.testing.assert_allclose(records["scale"], scales, rtol=1e-4)
    np.testing.assert_allclose(records["loss"], loss_values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(records["median_target_angle"], medians, atol=1e-2)
    assert np.all(records["mean_max_other_cos"] <= 1.0)


def test_scale_trajectory_variants_differ_only_in_the_update():
    kw = {"num_classes": 3, "num_subclusters": 2, "dim": 5, "samples_per_class": 4,
          "steps": 6, "learning_rate": 0.05}
    faithful = dynamics.scale_trajectory(jax.random.key(3), variant="faithful", **kw)
    code = dynamics.scale_trajectory(jax.random.key(3), variant="code", **kw)
    # The code variant sums the M = 2 target angles, so its cap pi/4 differs from the start.
    assert not np.allclose(faithful["scale"], code["scale"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"variant": "paper"}, "variant"),
    ({"num_classes": 1}, "num_classes"),
    ({"steps": 0}, "steps"),
    ({"learning_rate": -1.0}, "learning_rate"),
])
def test_scale_trajectory_rejects_bad_arguments(kwargs, match):
    base = {"num_classes": 3, "num_subclusters": 2, "dim": 4, "samples_per_class": 2,
            "steps": 3}
    with pytest.raises(ValueError, match=match):
        dynamics.scale_trajectory(jax.random.key(0), **{**base, **kwargs})


RNG = np.random.default_rng(0)
LABELS = np.repeat(np.arange(4), 8).astype(np.int32)
INPUTS = (RNG.normal(size=(32, 8)) + 3.0 * np.eye(4, 8)[LABELS]).astype(np.float32)


def test_neural_collapse_callback_matches_metrics():
    model = models.MLPEmbedder(8, 6, hidden=(16,), rngs=nnx.Rngs(0))
    head = models.make_head("adacos", embed_dim=6, num_classes=4, rngs=nnx.Rngs(1))
    recorded = dynamics.neural_collapse_callback(INPUTS, LABELS, batch_size=7)(model, head)
    z = l2_normalize(jnp.asarray(model(INPUTS)))
    expected = metrics.neural_collapse(z, LABELS, head.centres[...])
    assert recorded.keys() == expected.keys()
    for name, value in expected.items():
        assert recorded[name] == pytest.approx(value, rel=1e-4, abs=1e-6)


def test_neural_collapse_callback_needs_one_centre_per_class():
    model = models.MLPEmbedder(8, 6, hidden=(16,), rngs=nnx.Rngs(0))
    head = models.make_head("subcluster-adacos", embed_dim=6, num_classes=4,
                            num_subclusters=2, rngs=nnx.Rngs(1))
    with pytest.raises(ValueError, match="one centre per class"):
        dynamics.neural_collapse_callback(INPUTS, LABELS)(model, head)


def _ns(x, c, y, s):
    return losses.normalized_softmax(x, c, y, scale=s)


def _comp(x, c, y):
    return losses.compactness(x, c, y)


def test_free_embedding_run_matches_a_naive_loop():
    key_c, key_x = jax.random.split(jax.random.key(4))
    centres = random_centres(key_c, 3, 5)
    y = jnp.repeat(jnp.arange(3), 2)
    x0 = jax.random.normal(key_x, (6, 5))
    steps, lr, s = 7, 0.05, 4.0
    run = dynamics.free_embedding_run(_ns, _comp, x0, centres, y, scale=s, steps=steps,
                                      learning_rate=lr)
    tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
    x, state, loss_values, comps = x0, tx.init(x0), [], []
    for _ in range(steps):
        loss, grad = jax.value_and_grad(lambda z: jnp.mean(_ns(z, centres, y, s)))(x)
        loss_values.append(float(loss))
        comps.append(float(jnp.mean(_comp(x, centres, y))))
        updates, state = tx.update(grad, state, x)
        x = optax.apply_updates(x, updates)
    np.testing.assert_allclose(run["loss"], loss_values, rtol=1e-5)
    np.testing.assert_allclose(run["compactness"], comps, rtol=1e-5)
    np.testing.assert_allclose(run["x"], x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run["final_compactness"], _comp(x, centres, y), rtol=1e-5)


def test_free_embedding_run_without_trajectory_ends_at_the_same_embeddings_bit_for_bit():
    key_c, key_x = jax.random.split(jax.random.key(5))
    centres = random_centres(key_c, 3, 5)
    y = jnp.repeat(jnp.arange(3), 2)
    x0 = jax.random.normal(key_x, (6, 5))
    full = dynamics.free_embedding_run(_ns, _comp, x0, centres, y, scale=4.0, steps=50)
    bare = dynamics.free_embedding_run(_ns, _comp, x0, centres, y, scale=4.0, steps=50,
                                       trajectory=False)
    assert "loss" not in bare and "compactness" not in bare
    assert full["loss"].shape == full["compactness"].shape == (50,)
    for name in ("x", "final_loss", "final_compactness"):
        np.testing.assert_array_equal(bare[name], full[name])


def test_free_embedding_run_reaches_the_orthonormal_minimiser_in_float64():
    from asdtheory import bounds

    with jax.enable_x64(True):
        centres = jnp.eye(4, 8, dtype=jnp.float64)
        y = jnp.repeat(jnp.arange(4), 2)
        x0 = jax.random.normal(jax.random.key(0), (8, 8), dtype=jnp.float64)
        run = dynamics.free_embedding_run(_ns, _comp, x0, centres, y, scale=4.0, steps=5000)
        assert run["x"].dtype == np.float64
        angle = np.arccos(1.0 - run["final_compactness"] / 2.0)
    np.testing.assert_allclose(angle, bounds.orthogonal_minimiser_angle(4), atol=1e-4)


@pytest.mark.parametrize("kind, shape", [("simplex", (5, 8)), ("orthonormal", (5, 8)),
                                         ("random", (5, 8)), ("random sub", (5, 3, 8))])
def test_free_centres_are_unit_vectors_of_their_kind(kind, shape):
    c = np.asarray(dynamics.free_centres(kind, jax.random.key(0), 5, 8, num_subcentres=3))
    assert c.shape == shape
    np.testing.assert_allclose(np.linalg.norm(c, axis=-1), 1.0, rtol=1e-5)
    if kind == "orthonormal":
        np.testing.assert_allclose(c @ c.T, np.eye(5), atol=1e-5)
    if kind == "simplex":
        np.testing.assert_allclose(c.sum(axis=0), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="kind must be"):
        dynamics.free_centres("grid", jax.random.key(0), 5, 8)


def test_angle_degrees_inverts_the_chord_identity():
    theta = np.linspace(0.0, np.pi, 7)
    np.testing.assert_allclose(dynamics.angle_degrees(2.0 - 2.0 * np.cos(theta)),
                               np.degrees(theta), atol=1e-6)


@pytest.mark.parametrize("name", list(dynamics.FREE_LOSSES))
def test_every_free_loss_lowers_its_loss_on_its_centres(name):
    loss_fn, compactness_fn, kinds, _ = dynamics.FREE_LOSSES[name]
    y = jnp.repeat(jnp.arange(4), 3)
    centres = dynamics.free_centres(kinds[-1], jax.random.key(1), 4, 8, num_subcentres=2)
    x0 = jax.random.normal(jax.random.key(2), (y.size, 8))
    run = dynamics.free_embedding_run(loss_fn, compactness_fn, x0, centres, y, scale=4.0,
                                      steps=200, learning_rate=0.05)
    assert run["loss"][-1] < run["loss"][0]
    assert run["final_compactness"].shape == (y.size,)
    assert np.all((run["final_compactness"] >= -1e-6) & (run["final_compactness"] <= 4 + 1e-6))
