"""The C5 experiment: declaration, the smoke size through the runner, determinism, the measures
against naive references, the criteria, and every verdict path of the analysis."""

import types

import jax
import numpy as np
import pytest

from asdtheory import evaluation, experiments, metrics
from asdtheory.experiments import c3, c5
from asdtheory.repro import c5 as c5_verdicts
from asdtheory.repro import claims


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke size computed by the runner (one process per unit), loaded with the
    embedding measures (``repro.c5.load``), and the results folder."""
    results = tmp_path_factory.mktemp("results")
    summary = experiments.run("c5", "smoke", jobs=2, results_dir=results, progress=False)
    assert not summary.failed
    return c5_verdicts.load("smoke", results_dir=results), results


def test_smoke_table_has_the_whole_grid(smoke):
    table, _ = smoke
    assert set(table["method"].tolist()) == set(c5.METHODS)
    assert set(table["seed"].tolist()) == {0, 1}
    assert set(table["anomaly_type"].tolist()) == {"none", *c5.TYPES}
    for column in ("score", "twin_score", "distance_score", "twin_distance_score",
                   "level_score", "noise_displacement", "anomaly_displacement",
                   "anomaly_displacement_noisy", "twin_noise_displacement", "loss_settling"):
        assert np.all(np.isfinite(table[column])), column
    normal = table["label"] == 0
    # a normal clip is its own twin: its anomaly moves nothing
    assert np.all(table["anomaly_displacement"][normal] == 0)
    assert np.all(table["anomaly_displacement"][~normal] > 0)
    for column in ("purity", "twin_purity", "old_ratio_pink", "old_ratio_real"):
        assert np.all(np.isfinite(table[column][normal]))
        assert np.all(np.isnan(table[column][~normal]))
    one = table["seed"] == 0
    # the level detector needs no training: the same for every method of a seed
    levels = [table["level_score"][one & (table["method"] == m)] for m in c5.METHODS]
    assert all(np.array_equal(levels[0], other) for other in levels[1:])
    # (iii) and (v) share the encoder and its initial weights: equal untrained twins
    twins = [table["twin_score"][one & (table["method"] == m)]
             for m in ("subcluster-adacos", "class-compactness")]
    np.testing.assert_array_equal(*twins)
    # for the class-centre heads the embedding distance is their own score
    angular = np.isin(table["method"], ["subcluster-adacos", "class-compactness"])
    np.testing.assert_array_equal(table["distance_score"][angular], table["score"][angular])


def test_analyse_on_smoke_records(smoke):
    table, _ = smoke
    results = c5_verdicts.analyse(table, n_resamples=100)
    assert [r.id for r in results] == list(c5.CRITERIA)
    for result in results:
        assert result.verdict in claims.VERDICTS
        assert len(result.parts) == len(c5.CRITERIA[result.id]["comparisons"])
        assert result.unit == c5.CRITERIA[result.id]["unit"]
    rows = c5_verdicts.measure_table(table)
    assert all(v.shape == (2,) and np.all(np.isfinite(v)) for v in rows.values())
    references = c5_verdicts.versus_references(table, n_resamples=100)
    assert len(references) == len(c5.METHODS) * 5
    old = c5_verdicts.old_measures(table, n_resamples=100)
    assert set(old["ratio_contrast"]) == {(r, n) for r in c5.METHODS[1:]
                                          for n in ("pink", "real")}
    # six steps in two epochs cannot settle: the check must say so
    assert len(c5_verdicts.unsettled(table)) == len(c5.METHODS) * 2


def test_the_records_hold_the_embeddings_behind_the_displacements(smoke):
    """The displacement columns, recomputed naively (one clip at a time) from the recorded
    float16 embeddings, in the model's geometry."""
    table, results = smoke
    folder = experiments.records.size_folder(results, "c5", "smoke")
    for method in c5.METHODS:
        unit = f"method={method},seed=1"
        arrays = experiments.load_record(folder / unit).arrays
        rows = table["unit"] == unit
        label = table["label"][rows]
        normal, anomalous = np.flatnonzero(label == 0), np.flatnonzero(label == 1)
        clean = arrays["embedding_clean"].astype(np.float64)
        noisy = arrays["embedding"].astype(np.float64)
        twin = clean.copy()
        twin[anomalous] = arrays["embedding_twin"]
        twin_noisy = noisy.copy()
        twin_noisy[anomalous] = arrays["embedding_twin_noisy"]

        def distance(a, b, cosine=c5.GEOMETRY[method] == "cosine"):
            if cosine:
                a, b = a / np.sqrt(sum(x * x for x in a)), b / np.sqrt(sum(x * x for x in b))
            return np.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))

        for column, (a, b) in {"noise_displacement": (twin_noisy, twin),
                               "anomaly_displacement": (clean, twin),
                               "anomaly_displacement_noisy": (noisy, twin_noisy)}.items():
            want = [distance(a[i], b[i]) for i in range(len(label))]
            # float16 embeddings: ~3 significant digits
            np.testing.assert_allclose(table[column][rows], want, rtol=2e-2, atol=2e-3 *
                                       np.max(np.abs(want)))
        assert arrays["segments_real"].shape[:2] == (normal.size, 2)
        assert arrays["twin_embedding"].shape == noisy.shape


def _unit(method: str, seed: int = 0):
    return next(u for u in c5.units("smoke") if u.factors == {"method": method, "seed": seed})


@pytest.mark.parametrize("method", ["class-compactness", "autoencoder"])
def test_units_are_deterministic(method):
    config = _unit(method).config
    first, second = (c5.compute(config, jax.random.key(config["seed"])) for _ in range(2))
    np.testing.assert_array_equal(first.scores, second.scores)
    for name, values in first.clips.items():
        np.testing.assert_array_equal(values, second.clips[name])
    assert set(first.arrays) == set(second.arrays)
    for name, values in first.arrays.items():
        np.testing.assert_array_equal(values, second.arrays[name])
    # the trained system and its untrained twin differ: training happened
    assert not np.array_equal(first.scores, first.clips["twin_score"])


def test_a_clip_and_its_normal_twin_get_the_same_noise_at_a_label_free_level():
    config = {**_unit("deep-svdd").config, "strength": 4.0}
    sounds, twins, is_train = c5._sounds(config, jax.random.key(0))
    assert np.array_equal(twins[~sounds.is_anomaly], sounds.waveforms[~sounds.is_anomaly])
    assert not np.any(np.all(twins[sounds.is_anomaly] == sounds.waveforms[sounds.is_anomaly],
                             axis=1))
    bank = c3.noise_bank(tuple(config["noises"]))
    power = np.mean(sounds.waveforms.astype(np.float64) ** 2, axis=1)
    reference = np.array([power[is_train & (sounds.machine == m)].mean()
                          for m in range(sounds.machine.max() + 1)])[sounds.machine]
    key = jax.random.key(1)
    noise = c5._mix(sounds.waveforms, bank, "0", key, reference) - sounds.waveforms
    np.testing.assert_allclose(c5._mix(twins, bank, "0", key, reference) - twins, noise,
                               atol=1e-6)
    # 0 dB: every clip of a machine, normal or anomalous, gets its normal clips' mean power
    np.testing.assert_allclose(np.mean(noise.astype(np.float64) ** 2, axis=1), reference,
                               rtol=1e-3)


def test_displacement_matches_a_naive_reference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)) * 3.0, rng.normal(size=(7, 5))
    euclid = [np.sqrt(sum((x - y) ** 2 for x, y in zip(u, v, strict=True)))
              for u, v in zip(a, b, strict=True)]
    np.testing.assert_allclose(c5.displacement(a, b, "euclidean"), euclid, rtol=1e-12)
    cosines = [sum(x * y for x, y in zip(u, v, strict=True))
               / np.sqrt(sum(x * x for x in u) * sum(y * y for y in v))
               for u, v in zip(a, b, strict=True)]
    np.testing.assert_allclose(c5.displacement(a, b, "cosine"),
                               np.sqrt(2 - 2 * np.asarray(cosines)), rtol=1e-9)
    # cosine: scale-free per vector
    np.testing.assert_allclose(c5.displacement(5 * a, 0.1 * b, "cosine"),
                               c5.displacement(a, b, "cosine"), rtol=1e-12)
    with pytest.raises(ValueError, match="geometry"):
        c5.displacement(a, b, "manhattan")


def test_euclidean_embedding_distance_is_the_nearest_kmeans_centre_of_the_group():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(1)
    train_z = np.r_[rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) + 10.0]
    groups = np.repeat(["a", "b"], 20)
    detector = types.SimpleNamespace(
        config=types.SimpleNamespace(spec=types.SimpleNamespace(uses_labels=False),
                                     n_clusters=3),
        train_embeddings=train_z.astype(np.float32), train_groups=groups)
    test_z = rng.normal(size=(6, 3)) + np.r_[0, 0, 0, 10, 10, 10][:, None]
    test_groups = np.array(["a", "a", "b", "b", "a", "b"])
    got = c5.embedding_distance(detector, test_z, test_groups, seed=3)
    for i, (z, g) in enumerate(zip(test_z.astype(np.float32), test_groups, strict=True)):
        centres = KMeans(3, n_init=10, random_state=3).fit(
            train_z[groups == g].astype(np.float32).astype(np.float64)).cluster_centers_
        want = min(np.sqrt(sum((x - c) ** 2 for x, c in zip(z, centre, strict=True)))
                   for centre in centres)
        assert got[i] == pytest.approx(want, rel=1e-6)
    # clip 4 is scored against group a although it lies near b: its distance is large
    assert got[4] > 5


def test_invariance_and_class_auc_match_naive_references():
    rng = np.random.default_rng(2)
    noise, anomaly = rng.gamma(2.0, size=(4, 30)), rng.gamma(2.0, size=(4, 30))
    for r in range(4):
        want = 10 * np.log10(sum(x * x for x in noise[r]) / sum(x * x for x in anomaly[r]))
        assert c5_verdicts.invariance_db(noise[r], anomaly[r]) == pytest.approx(want)
        assert c5_verdicts.invariance_db(noise, anomaly)[r] == pytest.approx(want)
    classes = np.repeat([0, 1, 2], 10)
    y = np.tile(np.r_[np.zeros(6, int), np.ones(4, int)], 3)
    s = np.round(rng.normal(size=(5, 30)) + y, 1)  # ties
    for r in range(5):
        want = np.mean([evaluation.auc(y[classes == c], s[r, classes == c]) for c in range(3)])
        assert c5_verdicts.class_auc(y, s[r], classes) == pytest.approx(want, abs=1e-12)
        assert c5_verdicts.class_auc(y[None].repeat(5, 0), s, classes)[r] == pytest.approx(
            want, abs=1e-12)


def _naive_purity(z, y, k, cosine):
    out = []
    for i in range(len(z)):
        d = []
        for j in range(len(z)):
            if j != i:
                if cosine:
                    c = z[i] @ z[j] / np.sqrt((z[i] @ z[i]) * (z[j] @ z[j]))
                    d.append((1 - c, j))
                else:
                    d.append((np.sqrt(np.sum((z[i] - z[j]) ** 2)), j))
        nearest = [j for _, j in sorted(d)[:k]]
        out.append(sum(y[j] == y[i] for j in nearest) / k)
    return np.asarray(out)


def _naive_ratio(segments, y, cosine):
    if cosine:
        segments = segments / np.linalg.norm(segments, axis=-1, keepdims=True)
    means = segments.mean(axis=1)
    class_means = np.array([means[y == c].mean(axis=0) for c in sorted(set(y))])
    centre = class_means.mean(axis=0)
    between = np.mean([np.sum((m - centre) ** 2) for m in class_means])
    return np.array([np.mean([np.sum((s - m) ** 2) for s in clip]) / between
                     for clip, m in zip(segments, means, strict=True)])


@pytest.mark.parametrize("method", ["subcluster-adacos", "deep-svdd"])
def test_derived_purity_and_old_ratio_match_naive_references(method):
    rng = np.random.default_rng(3)
    label = np.tile(np.r_[0, 0, 0, 0, 1, 1], 4)
    aux = np.repeat(np.arange(4), 6)
    normal = label == 0
    n_normal = int(normal.sum())
    centres = rng.normal(size=(4, 6)) * 2
    embedding = centres[aux] + rng.normal(size=(24, 6))
    arrays = {"embedding": embedding, "twin_embedding": rng.normal(size=(24, 6)),
              **{f"{p}segments_{n}": embedding[normal][:, None] + rng.normal(size=(n_normal, 3,
                                                                                   6))
                 for p in ("", "twin_") for n in ("pink", "real")}}
    unit = f"method={method},seed=0"
    table = {"unit": np.full(24, unit), "method": np.full(24, method), "seed": np.zeros(24, int),
             "clip": np.arange(24), "label": label, "aux_class": aux}
    out = c5_verdicts.derive(table, {unit: arrays})
    cosine = c5.GEOMETRY[method] == "cosine"
    np.testing.assert_allclose(out["purity"][normal],
                               _naive_purity(embedding[normal], aux[normal], 5, cosine))
    np.testing.assert_allclose(out["twin_purity"][normal], _naive_purity(
        arrays["twin_embedding"][normal], aux[normal], 5, cosine))
    np.testing.assert_allclose(out["purity_gain"], out["purity"] - out["twin_purity"])
    for noise in ("pink", "real"):
        np.testing.assert_allclose(out[f"old_ratio_{noise}"][normal], _naive_ratio(
            arrays[f"segments_{noise}"], aux[normal], cosine), rtol=1e-6)  # float32 inside
    assert np.all(np.isnan(out["purity"][~normal]))


def test_sizes():
    for size in experiments.SIZES:
        units = c5.units(size)
        assert {u.factors["method"] for u in units} == set(c5.METHODS)
        # equal optimiser steps for every method, and the stored configuration is the one
        # compute uses
        configs = [c5.detect.DetectorConfig.from_dict(u.config["detector"]) for u in units]
        assert len({c.steps for c in configs}) == 1
        assert all(c == c5.detector_config(u.config) for c, u in zip(configs, units,
                                                                        strict=True))
        # one encoder for (i), (iii) and (v)
        encoders = {(c.embedder, c.embed_dim, c.n_mels) for c in configs
                    if c.method != "autoencoder"}
        assert len(encoders) == 1
    assert len({u.factors["seed"] for u in c5.units("standard")}) >= 20
    assert len(c5.units("smoke")) == len(c5.METHODS) * 2


def test_the_criteria_are_complete():
    assert list(c5.CRITERIA) == ["C5.a", "C5.b", "C5.c"]
    for spec in c5.CRITERIA.values():
        assert set(spec) == {"statement", "measure", "unit", "comparisons", "delta",
                             "delta_reason", "criterion"}
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        for terms in spec["comparisons"].values():
            assert sum(w for w, _, _ in terms) == 0  # a contrast: what the terms share cancels
            assert all(m in c5.METHODS and r in c5_verdicts.READINGS[spec["measure"]]
                       for _, m, r in terms)
            assert {m for _, m, _ in terms} & {"subcluster-adacos"}
    compared = {spec_id: {m for terms in spec["comparisons"].values() for _, m, _ in terms}
                for spec_id, spec in c5.CRITERIA.items()}
    assert compared == {"C5.a": {"subcluster-adacos", "deep-svdd", "autoencoder"},
                        "C5.b": {"subcluster-adacos", "class-compactness"},
                        "C5.c": {"subcluster-adacos", "deep-svdd", "autoencoder"}}
    readings = {r for terms in c5.CRITERIA["C5.c"]["comparisons"].values() for _, _, r in terms}
    assert readings == {"score", "distance_score"}


def _hand_made_table(direction: float, *, seeds: int = 8, per_class: int = 40,
                     spread: float = 1.0):
    """A c5-shaped table in which (iii) beats every other method by ``direction`` times a
    large effect on every measure (negative: loses), the others alike."""
    rng = np.random.default_rng(int(10 * direction) % 97 + seeds)
    classes = 4
    label = np.tile(np.r_[np.zeros(per_class // 2, int), np.ones(per_class // 2, int)], classes)
    aux = np.repeat(np.arange(classes), per_class)
    n = label.size
    columns = {}

    def add(name, values):
        columns.setdefault(name, []).append(np.asarray(values))

    for seed in range(seeds):
        level = rng.normal(size=n)
        for method in c5.METHODS:
            step = direction if method == "subcluster-adacos" else 0.0
            for name in ("score", "distance_score"):
                add(name, rng.normal(size=n) * spread + 3.0 * step * label)
            for name in ("twin_score", "twin_distance_score"):
                add(name, rng.normal(size=n))
            add("level_score", level)
            # (iii)'s noise displacement 10 dB below the others' (and its twin's) per unit
            # of direction
            for prefix in ("", "twin_"):
                shift = 0.0 if prefix else step
                add(f"{prefix}noise_displacement", np.abs(
                    rng.normal(1, spread, n)) * 10 ** (-shift * 10 / 20))
                anomaly = np.abs(rng.normal(1, spread, n)) * label
                add(f"{prefix}anomaly_displacement", anomaly)
                add(f"{prefix}anomaly_displacement_noisy", anomaly)
            for name in ("purity", "twin_purity", "old_ratio_pink", "old_ratio_real",
                         "twin_old_ratio_pink", "twin_old_ratio_real"):
                values = np.clip(rng.normal(0.5, 0.25 * spread, n)
                                 + (0.3 * step if name == "purity" else 0.0), 0, 1)
                add(name, np.where(label == 0, values, np.nan))
            for name, value in (("method", method), ("seed", seed),
                                ("unit", f"method={method},seed={seed}"),
                                ("loss_settling", 0.0)):
                add(name, np.full(n, value))
            add("clip", np.arange(n))
            add("label", label)
            add("aux_class", aux)
    table = {name: np.concatenate(parts) for name, parts in columns.items()}
    table["purity_gain"] = table["purity"] - table["twin_purity"]
    return table


@pytest.mark.parametrize(("direction", "size", "verdict", "reading"), [
    (1.0, {}, claims.SUPPORTED, "above 0"),
    (-1.0, {}, claims.CONTRADICTED, "reversed"),
    # no effect: enough clips that every interval excludes its delta
    (0.0, {"seeds": 10, "per_class": 400}, claims.CONTRADICTED, "absent"),
])
def test_analyse_verdicts_on_a_known_table(direction, size, verdict, reading):
    results = c5_verdicts.analyse(_hand_made_table(direction, **size), n_resamples=200)
    assert {r.id: r.verdict for r in results} == dict.fromkeys(c5.CRITERIA, verdict)
    for result in results:
        assert all(reading in p.decision.reading for p in result.parts), result.summary


def test_analyse_is_inconclusive_on_a_small_noisy_table():
    table = _hand_made_table(0.3, seeds=3, per_class=8, spread=2.0)
    results = c5_verdicts.analyse(table, n_resamples=200)
    assert {r.verdict for r in results} == {claims.INCONCLUSIVE}, [r.summary for r in results]
    assert all(r.detectable for r in results)


def test_references_on_a_known_table():
    table = _hand_made_table(1.0)
    gap = c5_verdicts.versus_references(table, n_resamples=100)
    # the hand-made (iii) separates anomalies; its twin and the level detector do not
    assert gap["class_auc", "subcluster-adacos", "twin"].low > 0.1
    assert gap["class_auc", "subcluster-adacos", "level"].low > 0.1
    assert gap["class_auc", "deep-svdd", "twin"].high < 0.1
    # its noise displacement lies 10 dB below its twin's: training helped (twin - trained)
    assert gap["invariance", "subcluster-adacos", "twin"].estimate == pytest.approx(10, abs=2)
    rows = c5_verdicts.measure_table(table)
    assert rows["invariance", "deep-svdd", "trained"].mean() == pytest.approx(0, abs=1.5)
    assert c5_verdicts.unsettled(table) == []


def test_without_the_noise_recordings_the_run_stops_before_any_unit(tmp_path, monkeypatch,
                                                                      capsys):
    from asdtheory.repro import cli

    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path))  # no noise/ folder here
    code = cli.main(["experiment", "run", "c5", "--size", "smoke", "--results",
                     str(tmp_path / "results"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "experiment c5" in err and "set ASDTHEORY_DATA" in err
    assert not list((tmp_path / "results").rglob("provenance.json"))  # nothing computed


def _c4_like(rng, effect: float, clustered: bool):
    """A c4-shaped table (two replicates, the four joint methods C5.d compares, the valve's
    clean clips and one fan clip and one 0 dB copy that must be ignored) with embeddings:
    (iii)'s normal clips clustered by attribute when ``clustered``, its scores shifted up by
    ``effect`` for anomalies."""
    methods = ("subcluster-adacos", "class-compactness", "deep-svdd", "autoencoder")
    attributes = np.repeat(["pat_00", "pat_01", "pat_02"], 12)
    label = np.tile(np.r_[np.zeros(6, int), np.ones(6, int)], 3)
    table, arrays = {}, {}
    columns = ("unit", "method", "task", "fold", "seed", "machine", "snr", "attribute",
               "label", "clip", "score", "twin_score", "level_score")
    rows = {c: [] for c in columns}
    for fold in (0, 1):
        for method in methods:
            unit = f"method={method},task=joint,fold={fold},seed=0"
            n = attributes.size
            centres = rng.normal(size=(3, 8)) * (5.0 if clustered and method == methods[0]
                                                 else 0.0)
            codes = np.unique(attributes, return_inverse=True)[1]
            z = centres[codes] + rng.normal(size=(n, 8))
            score = rng.normal(size=n) + (effect * label if method == methods[0] else 0.0)
            # valve clean, then the same clips at 0 dB, then one fan clip
            block = {"machine": ["valve"] * (2 * n) + ["fan"], "snr": ["clean"] * n
                     + ["0"] * n + ["clean"], "attribute": [*attributes, *attributes, "fan"],
                     "label": [*label, *label, 0], "clip": [*range(n), *range(n), n],
                     "score": [*score, *(score + 1), 0.0],
                     "twin_score": [*label, *label, 0.0], "level_score": [*score, *score, 0.0]}
            for c, v in block.items():
                rows[c].extend(v)
            for c, v in (("unit", unit), ("method", method), ("task", "joint"),
                         ("fold", fold), ("seed", 0)):
                rows[c].extend([v] * (2 * n + 1))
            twin = rng.normal(size=(n, 8))
            arrays[unit] = {"embedding": np.concatenate([z, -z, z[:1]]),
                            "twin_embedding": np.concatenate([twin, twin, twin[:1]])}
    table = {c: np.asarray(v) for c, v in rows.items()}
    return table, arrays


def test_valve_table_reads_the_clean_valve_clips_with_a_naive_purity():
    table, arrays = _c4_like(np.random.default_rng(0), effect=0.0, clustered=True)
    v = c5_verdicts.valve_table(table, arrays)
    assert v["score"].size == 2 * 4 * 36  # replicates x methods x clean valve clips
    unit = "method=subcluster-adacos,task=joint,fold=1,seed=0"
    rows = (v["seed"] == 1) & (v["method"] == "subcluster-adacos") & (v["label"] == 0)
    z = arrays[unit]["embedding"][:36][table["label"][:36] == 0]
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    classes = v["aux_class"][rows]
    similarity = z @ z.T
    np.fill_diagonal(similarity, -np.inf)
    naive = [np.mean(classes[np.argsort(-similarity[i])[:5]] == classes[i])
             for i in range(len(z))]
    np.testing.assert_allclose(v["purity"][rows], naive)
    assert np.all(np.isnan(v["purity"][v["label"] == 1]))


def test_valve_analyse_decides_both_measures():
    table, arrays = _c4_like(np.random.default_rng(1), effect=3.0, clustered=True)
    results = c5_verdicts.valve_analyse(c5_verdicts.valve_table(table, arrays),
                                        n_resamples=200)
    assert [r.id for r in results] == ["C5.d purity", "C5.d AUC"]
    assert {r.verdict for r in results} == {claims.SUPPORTED}
    # no structure and no effect: the purity difference is excluded from its delta, the AUC
    # (36 clips a replicate) at least not supported
    table, arrays = _c4_like(np.random.default_rng(1), effect=0.0, clustered=False)
    purity, auc = c5_verdicts.valve_analyse(c5_verdicts.valve_table(table, arrays),
                                            n_resamples=200)
    assert purity.verdict == claims.CONTRADICTED
    assert auc.verdict != claims.SUPPORTED


def test_valve_table_rejects_records_without_embeddings():
    table, arrays = _c4_like(np.random.default_rng(2), effect=0.0, clustered=False)
    unit = next(iter(arrays))
    arrays[unit] = {"embedding": arrays[unit]["embedding"][:10]}
    with pytest.raises(ValueError, match="version 2"):
        c5_verdicts.valve_table(table, arrays)


def test_valve_table_judges_the_twin_in_its_own_embedding_and_the_references_pair_up():
    table, arrays = _c4_like(np.random.default_rng(3), effect=3.0, clustered=True)
    v = c5_verdicts.valve_table(table, arrays)
    unit = "method=subcluster-adacos,task=joint,fold=0,seed=0"
    rows = (v["seed"] == 0) & (v["method"] == "subcluster-adacos") & (v["label"] == 0)
    z = arrays[unit]["twin_embedding"][:36][table["label"][:36] == 0]
    expected = metrics.knn_purity(z, v["aux_class"][rows], k=5, metric="cosine")
    np.testing.assert_allclose(v["twin_purity"][rows], expected)
    methods = ("subcluster-adacos", "deep-svdd")
    rows = c5_verdicts.measure_table(v, methods=methods, readings={"purity": ("trained", "twin")})
    assert set(rows) == {("purity", m, r) for m in methods for r in ("trained", "twin")}
    assert rows["purity", "subcluster-adacos", "trained"].mean() > 0.9  # clustered by attribute
    assert rows["purity", "subcluster-adacos", "twin"].mean() < 0.6
    gap = c5_verdicts.versus_references(v, methods=methods, n_resamples=100,
                                        pairs=c5_verdicts.VALVE_REFERENCES)
    assert gap["purity", "subcluster-adacos", "twin"].low > 0
    # the fixture's level detector is the model's own score: no difference at all
    level = gap["class_auc", "deep-svdd", "level"]
    assert (level.estimate, level.low, level.high) == (0.0, 0.0, 0.0)


def test_valve_table_rejects_records_without_twin_embeddings():
    table, arrays = _c4_like(np.random.default_rng(2), effect=0.0, clustered=False)
    unit = next(iter(arrays))
    del arrays[unit]["twin_embedding"]
    with pytest.raises(ValueError, match="twin_embedding"):
        c5_verdicts.valve_table(table, arrays)
