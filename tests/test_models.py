import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory import losses, methods, models


def _x(*shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _params(module):
    return nnx.to_pure_dict(nnx.state(module, nnx.Param))


def _leaf_names(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaf_names(v, (*prefix, str(k)))
    else:
        yield prefix


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_mlp_matches_naive_forward(activation, use_bias):
    model = models.MLPEmbedder(5, 3, hidden=(7, 4), use_bias=use_bias, activation=activation,
                               rngs=nnx.Rngs(0))
    x = _x(6, 5)
    act = {"relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
           "tanh": np.tanh}[activation]
    h = np.asarray(x, np.float64)
    layers = _params(model)["layers"]
    for i in range(3):
        h = h @ np.asarray(layers[i]["kernel"], np.float64)
        if use_bias:
            h = h + np.asarray(layers[i]["bias"], np.float64)
        if i < 2:
            h = act(h)
    np.testing.assert_allclose(model.embed(x), h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("factory", [
    lambda b: models.MLPEmbedder(4, 3, use_bias=b, rngs=nnx.Rngs(0)),
    lambda b: models.CNNEmbedder(12, 3, channels=(4, 8), use_bias=b, rngs=nnx.Rngs(0)),
    lambda b: models.Autoencoder(4, hidden=(6,), bottleneck=2, use_bias=b, rngs=nnx.Rngs(0)),
])
def test_use_bias_switch_removes_every_bias(factory):
    with_bias = [n[-1] for n in _leaf_names(_params(factory(True)))]
    without = [n[-1] for n in _leaf_names(_params(factory(False)))]
    assert "bias" in with_bias
    assert "bias" not in without
    assert len(without) == with_bias.count("kernel")


def test_bias_free_relu_networks_map_zero_to_zero():
    # The property Ruff et al. rely on: without biases, phi(0) = 0 (no constant to collapse to).
    cnn = models.CNNEmbedder(12, 5, channels=(4, 8), use_bias=False, rngs=nnx.Rngs(0))
    mlp = models.MLPEmbedder(4, 5, use_bias=False, rngs=nnx.Rngs(0))
    assert np.all(np.asarray(cnn(jnp.zeros((2, 9, 12)))) == 0)
    assert np.all(np.asarray(mlp(jnp.zeros((2, 4)))) == 0)
    assert np.any(np.asarray(cnn(_x(2, 9, 12))) != 0)


def test_cnn_shapes_and_bad_input():
    cnn = models.CNNEmbedder(13, 6, channels=(4, 8, 8), rngs=nnx.Rngs(0))
    for frames in (8, 17):  # any number of frames: time is mean-pooled
        assert cnn.embed(_x(3, frames, 13)).shape == (3, 6)
    with pytest.raises(ValueError, match=r"\(B, T, 13\)"):
        cnn(_x(3, 8, 12))
    with pytest.raises(ValueError, match="activation"):
        models.CNNEmbedder(13, 6, activation="gelu", rngs=nnx.Rngs(0))


def test_autoencoder_shapes():
    ae = models.Autoencoder(10, hidden=(8, 6), bottleneck=3, rngs=nnx.Rngs(0))
    x = _x(4, 10)
    assert ae(x).shape == (4, 10)
    assert ae.embed(x).shape == (4, 3)
    np.testing.assert_allclose(ae(x), ae.decoder(ae.encoder(x)), rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 10))
def test_mlp_rows_are_independent(n_a, n_b, seed):
    # Embedding a batch equals embedding its parts: no coupling between examples.
    model = _MLP
    a, b = _x(n_a, 4, seed=seed), _x(n_b, 4, seed=seed + 100)
    np.testing.assert_allclose(model(jnp.concatenate([a, b])),
                               jnp.concatenate([model(a), model(b)]), rtol=1e-5, atol=1e-6)


_MLP = models.MLPEmbedder(4, 3, rngs=nnx.Rngs(0))

_LOSSES = {
    "normalized-softmax": losses.normalized_softmax,
    "arcface": losses.arcface,
    "cosface": losses.cosface,
    "adacos": losses.adacos,
    "subcluster-adacos": losses.subcluster_adacos,
    "adaproj": losses.adaproj,
    "class-compactness": lambda x, c, y, *, scale: losses.compactness(x, c, y),
}


# The linear classifier ("softmax") has learned weights and a bias: its own test below.
@pytest.mark.parametrize("method", [m for m in methods.LABELLED if not methods.get(m).linear])
def test_angular_head_is_the_library_loss(method):
    m = 3 if method in ("subcluster-adacos", "adaproj") else 1
    head = models.AngularHead(method, 4, 6, num_subclusters=m, rngs=nnx.Rngs(0))
    x, y = _x(8, 6), jnp.arange(8) % 4
    scale0 = float(head.scale[...])
    centres = np.asarray(head.centres[...])
    assert centres.shape == ((4, m, 6) if m > 1 else (4, 6))
    np.testing.assert_allclose(np.linalg.norm(centres, axis=-1), 1.0, rtol=1e-6)
    got = head(x, y)
    if head.adaptive_scale:
        assert scale0 == pytest.approx(losses.adacos_fixed_scale(4, m))
        scale_fn = {"adacos": losses.adacos_scale, "adaproj": losses.adaproj_scale,
                    "subcluster-adacos": losses.subcluster_adacos_scale}[method]
        expected_scale = float(scale_fn(x, centres, y, scale=scale0))
    else:
        expected_scale = models.DEFAULT_FIXED_SCALE
    assert float(head.scale[...]) == pytest.approx(expected_scale, rel=1e-6)
    np.testing.assert_allclose(got, _LOSSES[method](x, centres, y, scale=expected_scale),
                               rtol=1e-6)
    # Without the update the scale stays where it is.
    head(x, y, update_scale=False)
    assert float(head.scale[...]) == pytest.approx(expected_scale, rel=1e-6)
    # At a given scale: the library loss at that scale, the head's scale untouched.
    np.testing.assert_allclose(head.loss_at_scale(x, y, scale=7.0),
                               _LOSSES[method](x, centres, y, scale=7.0), rtol=1e-6)
    assert float(head.scale[...]) == pytest.approx(expected_scale, rel=1e-6)


def test_angular_head_options():
    fixed = models.AngularHead("arcface", 3, 4, margin=0.2, scale=10.0, rngs=nnx.Rngs(0))
    x, y = _x(5, 4), jnp.array([0, 1, 2, 0, 1])
    np.testing.assert_allclose(fixed(x, y), losses.arcface(x, fixed.centres[...], y, scale=10.0,
                                                            margin=0.2), rtol=1e-6)
    assert isinstance(fixed.centres, models.Constant)
    trainable = models.AngularHead("adacos", 3, 4, trainable_centres=True, rngs=nnx.Rngs(0))
    assert isinstance(trainable.centres, nnx.Param)
    code = models.AngularHead("subcluster-adacos", 3, 4, num_subclusters=2, variant="code",
                              rngs=nnx.Rngs(0))
    s0 = float(code.scale[...])
    code(x, y)
    expected = losses.subcluster_adacos_scale(x, code.centres[...], y, scale=s0, variant="code")
    assert float(code.scale[...]) == pytest.approx(float(expected), rel=1e-6)


def test_angular_head_compactness():
    head = models.AngularHead("subcluster-adacos", 3, 4, num_subclusters=2, rngs=nnx.Rngs(0))
    x, y = _x(5, 4), jnp.array([0, 1, 2, 0, 1])
    np.testing.assert_allclose(head.compactness(x, y),
                               losses.compactness(x, head.centres[...], y), rtol=1e-6)
    proj = models.AngularHead("adaproj", 3, 4, num_subclusters=2, rngs=nnx.Rngs(0))
    cos = losses.subspace_cosines(x, proj.centres[...])
    np.testing.assert_allclose(proj.compactness(x, y), 2 - 2 * cos[jnp.arange(5), y],
                               rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "sphereface"}, "unknown method 'sphereface'"),
    ({"method": "adacos", "margin": 0.3}, "margin applies"),
    ({"method": "arcface", "num_subclusters": 2}, "num_subclusters applies"),
    ({"method": "adaproj", "num_subclusters": 2, "trainable_centres": True}, "fixed random"),
    ({"method": "subcluster-adacos", "variant": "paper"}, "variant"),
    ({"method": "arcface", "num_classes": 0}, "num_classes"),
    ({"method": "adacos", "num_classes": 2}, "N M >= 3"),
])
def test_angular_head_rejects_bad_options(kwargs, match):
    kwargs = {"num_classes": 4, "embed_dim": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        models.AngularHead(kwargs.pop("method"), kwargs.pop("num_classes"),
                           kwargs.pop("embed_dim"), rngs=nnx.Rngs(0), **kwargs)


@pytest.mark.parametrize("trainable", [False, True])
def test_deep_svdd_head(trainable):
    head = models.DeepSVDDHead(3, trainable_centre=trainable, eps=0.1)
    assert head.needs_initial_pass
    assert isinstance(head.centre, nnx.Param if trainable else models.Constant)
    z = jnp.array([[1.0, 0.05, -2.0], [3.0, -0.1, -1.0]])
    head.set_centre(z)
    assert not head.needs_initial_pass
    np.testing.assert_allclose(head.centre[...], [2.0, -0.1, -1.5])
    x = _x(4, 3)
    np.testing.assert_allclose(head(x), np.sum((np.asarray(x) - [2.0, -0.1, -1.5]) ** 2, -1),
                               rtol=1e-6)
    np.testing.assert_allclose(head.compactness(x), head(x))
    with pytest.raises(ValueError, match="dimension 2"):
        head.set_centre(jnp.ones((4, 2)))


def test_reconstruction_head():
    head = models.ReconstructionHead()
    x, r = _x(3, 2, 5), _x(3, 2, 5, seed=1)
    np.testing.assert_allclose(head(r, None, x),
                               ((np.asarray(r) - np.asarray(x)) ** 2).reshape(3, -1).mean(1),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        head(r[:, :1], None, x)


def test_make_head():
    rngs = nnx.Rngs(0)
    assert isinstance(models.make_head("arcface", embed_dim=3, num_classes=4, rngs=rngs),
                      models.AngularHead)
    svdd = models.make_head("deep-svdd", embed_dim=3, rngs=rngs, trainable_centres=True)
    assert isinstance(svdd.centre, nnx.Param)
    assert isinstance(models.make_head("autoencoder", embed_dim=3, rngs=rngs),
                      models.ReconstructionHead)
    with pytest.raises(ValueError, match="unknown method 'svm'"):
        models.make_head("svm", embed_dim=3, rngs=rngs)
    with pytest.raises(ValueError, match="no options"):
        models.make_head("autoencoder", embed_dim=3, rngs=rngs, scale=2.0)


def test_centres_depend_on_the_rngs_only():
    a = models.AngularHead("adacos", 5, 4, rngs=nnx.Rngs(7)).centres[...]
    b = models.AngularHead("adacos", 5, 4, rngs=nnx.Rngs(7)).centres[...]
    c = models.AngularHead("adacos", 5, 4, rngs=nnx.Rngs(8)).centres[...]
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert jax.numpy.isfinite(a).all()


# --- the two-branch network -------------------------------------------------------------

def test_two_branch_has_the_authors_layer_sizes_for_ten_second_clips():
    # The author's 10-s network: |FFT| of 80 000 bins -> 1250 -> 40 -> 10 positions x 128
    # filters; spectrogram 311 frames x 513 bins -> 16 bins x 128 channels after the stages.
    model = nnx.eval_shape(lambda: models.TwoBranchEmbedder(rngs=nnx.Rngs(0)))  # shapes only
    params = _params(model)
    assert params["spectrum_dense"][0]["kernel"].shape == (1280, 128)
    assert params["spectrogram_out"]["kernel"].shape == (2048, 128)
    assert params["stem"]["kernel"].shape == (7, 7, 1, 16)
    assert [params["stages"][i]["conv4"]["kernel"].shape[-1] for i in range(4)] == [16, 32, 64,
                                                                                     128]
    assert not any("bias" in name[-1] for name in _leaf_names(params)
                   if "norm" not in "".join(name))


SHORT = dict(num_samples=8000, embed_dim=4, channels=(2, 2, 4), spectrum_channels=4, dense=8)


@pytest.mark.parametrize("norm_offset", [True, False])
def test_two_branch_layers_without_additive_constants(norm_offset):
    model = nnx.eval_shape(lambda: models.TwoBranchEmbedder(**SHORT, norm_offset=norm_offset,
                                                            rngs=nnx.Rngs(0)))
    names = ["/".join(n) for n in _leaf_names(_params(model))]
    assert not [n for n in names if n.endswith("bias") and "norm" not in n]
    assert any("norm" in n and n.endswith("bias") for n in names) == norm_offset


def test_two_branch_embeds_each_clip_independently_in_evaluation_mode():
    model = models.TwoBranchEmbedder(**SHORT, rngs=nnx.Rngs(0))
    x = _x(5, 8000)
    z = model.embed(x)
    assert z.shape == (5, 8)
    np.testing.assert_allclose(model.embed(x[2:3]), z[2:3], rtol=1e-4, atol=1e-5)


def test_two_branch_embedding_is_the_spectrum_then_the_spectrogram_branch():
    model = models.TwoBranchEmbedder(**SHORT, rngs=nnx.Rngs(0))
    x = _x(3, 8000)
    spectrum, spectrogram = model.spectrum_branch(x), model.spectrogram_branch(x)
    assert spectrum.shape == spectrogram.shape == (3, 4)
    np.testing.assert_array_equal(model(x), np.concatenate([spectrum, spectrogram], -1))
    # each branch reads only its own layers
    model.spectrum_out.kernel[...] = 2 * model.spectrum_out.kernel[...]
    np.testing.assert_allclose(model.spectrum_branch(x), 2 * spectrum, rtol=1e-6)
    np.testing.assert_array_equal(model.spectrogram_branch(x), spectrogram)


def test_two_branch_training_mode_uses_batch_statistics_and_updates_running_ones():
    model = models.TwoBranchEmbedder(**SHORT, rngs=nnx.Rngs(0))
    x = _x(6, 8000)
    before = np.asarray(model.bin_norm.mean[...]).copy()
    model.train()
    z_train = model(x)
    model.eval()
    assert not np.allclose(np.asarray(model.bin_norm.mean[...]), before)
    # With batch statistics every output unit of a batch-normed layer is centred over the
    # batch: the clips of one batch influence each other's embedding.
    model.train()
    assert not np.allclose(model(x[:3]), z_train[:3], atol=1e-4)


def test_two_branch_rejects_wrong_shapes_and_too_short_clips():
    model = models.TwoBranchEmbedder(**SHORT, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"waveforms \(B, 8000\)"):
        model(_x(2, 4000))
    with pytest.raises(ValueError, match="too short"):
        models.TwoBranchEmbedder(**{**SHORT, "num_samples": 2000}, rngs=nnx.Rngs(0))


def test_class_compactness_head_is_the_pull_to_the_own_centre():
    head = models.make_head("class-compactness", embed_dim=3, num_classes=4, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 1, 0])
    centres = np.asarray(head.centres[...])
    want = [2 - 2 * (xi @ centres[yi]) / (np.linalg.norm(xi) * np.linalg.norm(centres[yi]))
            for xi, yi in zip(x, y, strict=True)]
    np.testing.assert_allclose(head(jnp.asarray(x), jnp.asarray(y)), want, rtol=1e-5, atol=1e-6)
    assert not head.adaptive_scale and not head.supports_soft_labels


def test_softmax_head_is_a_learned_linear_classifier_against_a_per_sample_loop():
    head = models.make_head("softmax", embed_dim=3, num_classes=4, rngs=nnx.Rngs(0))
    assert isinstance(head.centres, nnx.Param) and isinstance(head.bias, nnx.Param)
    head.bias[...] = jnp.asarray([0.3, -0.2, 0.0, 1.1])
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32) * 3.0
    y = np.array([0, 1, 2, 3, 1, 0])
    weights, bias = np.asarray(head.centres[...]), np.asarray(head.bias[...])
    want = []
    for xi, yi in zip(x.astype(np.float64), y, strict=True):
        logits = [xi @ weights[k] + bias[k] for k in range(4)]  # unnormalised, no scale
        want.append(-np.log(np.exp(logits[yi]) / np.sum(np.exp(logits))))
    np.testing.assert_allclose(head(jnp.asarray(x), jnp.asarray(y)), want, rtol=1e-5)
    assert not head.adaptive_scale and head.supports_soft_labels
