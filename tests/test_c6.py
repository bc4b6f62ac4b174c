"""The C6 experiment: the smoke size through the runner, determinism, the data's ground truth
(box, label-free noise level, dominance), the criteria, the shares against a naive per-map
reference, and every verdict path of the analysis, the gate's included."""

import jax
import numpy as np
import pytest

from asdtheory import experiments, explain
from asdtheory.experiments import c6
from asdtheory.repro import c6 as c6_verdicts
from asdtheory.repro import claims


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke size computed by the runner (one process per unit), loaded as the table and
    the maps."""
    results = tmp_path_factory.mktemp("results")
    summary = experiments.run("c6", "smoke", jobs=2, results_dir=results, progress=False)
    assert not summary.failed, summary.failed
    return (experiments.load_table("c6", "smoke", results_dir=results),
            c6_verdicts.load_maps("smoke", results_dir=results))


def test_smoke_records_hold_the_whole_grid(smoke):
    table, maps = smoke
    spec = c6.SIZES["smoke"]
    assert set(table["method"].tolist()) == set(c6.METHODS)
    assert set(table["seed"].tolist()) == set(range(spec["seeds"]))
    per_unit = 6 * (spec["test_normal"] + len(c6.ANOMALIES) * spec["test_anomalous"])
    assert table["score"].size == len(c6.METHODS) * spec["seeds"] * per_unit
    assert set(table["anomaly"].tolist()) == {"none", *c6.ANOMALIES}
    for column in ("score", "twin_score", "level_score", "deleted_machine", "deleted_noise",
                   "machine_area", "loss_settling"):
        assert np.all(np.isfinite(table[column]))
    # every anomalous clip, and only those, is explained
    assert np.array_equal(table["map"] >= 0, table["label"] == 1)
    assert np.array_equal(table["label"] == 1, table["anomaly"] != "none")
    explained = 6 * len(c6.ANOMALIES) * spec["test_anomalous"]
    for arrays in maps.values():
        for name in (*c6.FILLS, f"twin_{c6.TWIN_FILL}"):
            assert arrays[f"saliency_{name}"].shape == (explained, 32, 32)
            assert arrays[f"saliency_{name}"].dtype == np.float16
            assert np.max(np.abs(arrays[f"saliency_{name}"].astype(np.float32))) == 1.0
            assert arrays[f"saliency_scale_{name}"].shape == (explained,)
        # the twin's maps explain another score: the untrained network's
        assert not np.array_equal(arrays["saliency_class"], arrays["saliency_twin_class"])
        assert arrays["dominant"].shape == (per_unit, 32, 32)
        assert arrays["anomaly_region"].shape == (explained, 32, 32)
        assert np.array_equal(arrays["box"], c6.box_mask())
    # the level detector and the clips need no training: the same for every method of a seed
    for seed in range(spec["seeds"]):
        rows = [(table["seed"] == seed) & (table["method"] == m) for m in c6.METHODS]
        for column in ("level_score", "machine_area", "class", "anomaly"):
            assert all(np.array_equal(table[column][rows[0]], table[column][r])
                       for r in rows[1:])
        regions = [maps[m, seed]["anomaly_region"] for m in c6.METHODS]
        assert all(np.array_equal(regions[0], r) for r in regions[1:])


def test_inputs_redraws_what_the_records_explain(smoke):
    table, maps = smoke
    for seed in range(c6.SIZES["smoke"]["seeds"]):
        unit = next(u for u in c6.units("smoke") if u.factors["seed"] == seed)
        redrawn = c6.inputs(unit.config, seed)
        arrays = maps[unit.factors["method"], seed]
        rows = (table["seed"] == seed) & (table["method"] == unit.factors["method"])
        explained = table["clip"][rows & (table["map"] >= 0)]
        assert redrawn["test"].shape == arrays["dominant"].shape
        assert np.array_equal(redrawn["dominant"], arrays["dominant"])
        assert np.array_equal(redrawn["anomaly_region"][explained], arrays["anomaly_region"])


def test_analyse_on_smoke_records(smoke):
    table, maps = smoke
    analysis = c6_verdicts.analyse(table, maps, n_resamples=100)
    assert [r.id for r in analysis.results] == list(c6.CRITERIA)
    for result in analysis.results:
        assert result.verdict in claims.OUTCOMES
        assert len(result.parts) + len(analysis.withheld.get(result.id, {})) == len(
            c6.CRITERIA[result.id]["comparisons"])
    assert set(analysis.gate) == {(m, k) for m in c6.METHODS for k in c6.ANOMALIES}
    rows = c6_verdicts.map_table(table, maps)
    spec = c6.SIZES["smoke"]
    assert rows["seed"].size == spec["seeds"] * 6 * len(c6.ANOMALIES) * spec["test_anomalous"]
    reported = c6_verdicts.reported(rows, n_resamples=100)
    assert set(reported) == set(c6.REPORTED)
    old = c6_verdicts.old_measure(rows, n_resamples=100)
    assert set(old["mean"]) == {(m, k, r) for m in c6.METHODS for k in c6.ANOMALIES
                                for r in c6_verdicts.OLD_REGIONS[k]}
    detection = c6_verdicts.detection_table(table)
    assert all(v.shape == (c6.SIZES["smoke"]["seeds"],) for v in detection.values())
    contrasts = c6_verdicts.detection_contrasts(table, n_resamples=100)
    for (method, kind, rival), difference in contrasts.items():
        # the estimate is the mean over seeds of the per-seed AUC differences
        assert difference.estimate == pytest.approx(
            (detection[method, kind, "trained"] - detection[method, kind, rival]).mean())
        assert difference.low <= difference.estimate <= difference.high
    # eight steps cannot settle a loss: the check must say so
    assert len(c6_verdicts.unsettled(table)) == len(c6.units("smoke"))


def _unit(method: str):
    return next(u for u in c6.units("smoke") if u.factors["method"] == method)


@pytest.mark.parametrize("method", ["subcluster-adacos", "autoencoder"])
def test_a_unit_is_deterministic(method):
    config = _unit(method).config
    first, second = (c6.compute(config, jax.random.key(config["seed"])) for _ in range(2))
    np.testing.assert_array_equal(first.scores, second.scores)
    for name in ("twin_score", "level_score", "deleted_machine", "deleted_noise"):
        np.testing.assert_array_equal(first.clips[name], second.clips[name])
    assert set(first.arrays) == set(second.arrays)
    for name in first.arrays:
        np.testing.assert_array_equal(first.arrays[name], second.arrays[name])
    # the trained system and its untrained twin differ: training happened
    assert not np.array_equal(first.scores, first.clips["twin_score"])


def test_the_clips_ground_truth():
    config = {**_unit("deep-svdd").config, "train": 4, "test_normal": 2, "test_anomalous": 2,
              "harmonic_strength": 4.0}
    d = c6.draw(config, jax.random.key(3))
    # 0 dB: every test clip of a machine, normal or anomalous, gets noise (and the deletion's
    # other noise) at the mean power of that machine's clean normal training clips: a
    # label-free level
    train_power = np.mean(d["train_signal"].astype(np.float64) ** 2, axis=1)
    for name in ("noise", "other_noise"):
        power = np.mean(d[name].astype(np.float64) ** 2, axis=1)
        for m in range(c6.MACHINES):
            rows = d["machine"] == m
            np.testing.assert_allclose(power[rows], train_power[d["train_machine"] == m].mean(),
                                       rtol=1e-3)
    assert not np.allclose(d["noise"], d["other_noise"])
    # with and without its anomaly, a clip differs by the anomaly alone: nothing for a normal
    # clip, the tone for a tone clip, one harmonic (a narrow band) for a harmonic clip
    kind = d["anomaly"]
    assert np.array_equal(d["signal"][kind == "none"], d["without"][kind == "none"])
    tone = d["signal"][kind == "tone"] - d["without"][kind == "tone"]
    box_time = np.arange(tone.shape[1]) / c6.SAMPLE_RATE
    outside = (box_time < c6.BOX_SECONDS[0]) | (box_time > c6.BOX_SECONDS[1])
    assert np.all(tone[:, outside] == 0) and np.all(np.std(tone, axis=1) > 0)
    harmonic = d["signal"][kind == "harmonic"] - d["without"][kind == "harmonic"]
    spectrum = np.abs(np.fft.rfft(harmonic, axis=1)) ** 2
    top = np.sort(spectrum, axis=1)[:, -20:].sum(axis=1)
    assert np.all(top > 0.9 * spectrum.sum(axis=1))  # one (frequency-modulated) line
    # the anomaly regions: the tone's lies in notebook 06's box, none for a normal clip
    x = c6._inputs(config, d)
    box = c6.box_mask()
    assert box.sum() == 27 and box.any(1).sum() == 9  # 9 frames x 3 bands
    region = x["anomaly_region"]
    assert not region[kind == "none"].any()
    assert (region[kind == "tone"] & box).sum() >= 0.8 * region[kind == "tone"].sum() > 0
    assert region[kind == "harmonic"].any(axis=(1, 2)).all()
    # dominance is a per-bin fact of the clip: its machine-dominated share lies strictly
    # between 0 and 1
    share = x["dominant"].mean(axis=(1, 2))
    assert np.all((share > 0) & (share < 1))


def test_sizes_and_calibration():
    stored = c6.CALIBRATION
    for size in experiments.SIZES:
        units = c6.units(size)
        assert {u.factors["method"] for u in units} == set(c6.METHODS)
        assert {u.config["harmonic_strength"] for u in units} == {
            stored["chosen_harmonic_strength"]}
        assert {u.config["tone_db"] for u in units} == {-6.0}  # notebook 06's whine
        # the calibration's key is no unit's
        assert stored["seed"] == c6.CALIBRATION_SEED
        assert c6.CALIBRATION_SEED not in {u.factors["seed"] for u in units}
        steps = {(u.factors["method"] == "autoencoder", c6.detector_config(u.config).steps)
                 for u in units}
        assert len(steps) == 2  # one budget for the embedders, one for the autoencoder
    assert len({u.factors["seed"] for u in c6.units("standard")}) >= 20
    worst = {level: min(v.values()) for level, v in stored["auc"]["harmonic"].items()}
    assert worst[str(stored["chosen_harmonic_strength"])] == stored["smallest_auc"]
    passing = [float(lv) for lv, w in worst.items() if w >= stored["target"]]
    assert stored["chosen_harmonic_strength"] == (min(passing) if passing else
                                                  float(max(worst, key=worst.get)))


def test_the_criteria_are_complete():
    assert list(c6.CRITERIA) == ["C6.a", "C6.b", "C6.c", "C6.d", "C6.e"]
    statistics = set(c6_verdicts.STATISTICS)
    for spec in c6.CRITERIA.values():
        assert set(spec) == {"statement", "comparisons", "delta", "delta_reason", "why",
                             "criterion", "gate_auc", "gate_reason"}
        assert spec["delta"] > 0 and spec["gate_auc"] == 0.8
        assert all(spec[k].strip() for k in ("delta_reason", "why", "criterion",
                                             "gate_reason"))
        # chance and both rivals, on each anomaly kind
        assert len(spec["comparisons"]) == 3 * len(c6.ANOMALIES)
        for terms in spec["comparisons"].values():
            assert sum(w for w, *_ in terms) == 0  # a contrast: what the terms share cancels
            assert terms[0][:2] == (1.0, "subcluster-adacos")
            assert len({kind for *_, kind in terms}) == 1
            assert all(s in (*c6.METHODS, "chance") and st in statistics
                       and kind in c6.ANOMALIES for _, s, st, kind in terms)
            # the decided shares use the class-conditional fill
            assert all(st == "deletion" or st.endswith("/class") for _, _, st, _ in terms)
    # every measure on the machine-dominated bins, the anomaly and the deletion test decided
    decided = {terms[0][2] for spec in c6.CRITERIA.values()
               for terms in spec["comparisons"].values()}
    assert {f"{m}/machine/class" for m in c6.MEASURES} | {"positive/anomaly/class",
                                                           "deletion"} == decided
    for group in c6.REPORTED.values():
        for terms in group.values():
            assert all(st in statistics for _, _, st, _ in terms)
    # the whole claim combines decided parts: what the score listens to, with and without RISE
    assert set(c6.OVERALL["parts"]) <= set(c6.CRITERIA)
    assert c6.OVERALL["id"] == "C6" and c6.OVERALL["statement"].strip()


# ------------------------------------------------------------------ shares, naive reference

def _naive_share(saliency, region, measure):
    total = inside = 0.0
    for t in range(saliency.shape[0]):
        for k in range(saliency.shape[1]):
            v = float(saliency[t, k])
            mass = {"positive": max(v, 0.0), "negative": max(-v, 0.0),
                    "absolute": abs(v)}[measure]
            total += mass
            inside += mass if region[t, k] else 0.0
    return inside / total if total > 0 else float(region.mean())


def test_shares_match_a_naive_per_map_reference():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(6, 9, 7))
    maps[4] = np.abs(maps[4])  # no negative mass: chance for the negative share
    maps[5] = 0.0  # no mass at all
    regions = rng.random((6, 9, 7)) < 0.3
    for measure in c6.MEASURES:
        got = c6_verdicts.shares(maps, regions, measure)
        want = [_naive_share(m, r, measure) for m, r in zip(maps, regions, strict=True)]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # the positive share is notebook 06's explain.region_share (which reads float32 maps)
    for m, r in zip(maps[:5].astype(np.float32), regions[:5], strict=True):
        assert c6_verdicts.shares(m[None], r[None], "positive")[0] == pytest.approx(
            explain.region_share(m, r), abs=1e-12)
    # one region for all maps broadcasts
    np.testing.assert_allclose(c6_verdicts.shares(maps, regions[0], "absolute"),
                               [_naive_share(m, regions[0], "absolute") for m in maps])


def test_float16_storage_moves_a_share_by_less_than_1e_3():
    # a real centred RISE map of a score that reacts to part of the spectrogram, as stored
    rng = np.random.default_rng(1)
    mel = rng.normal(size=(32, 32)).astype(np.float32)
    weights = np.zeros((32, 32), np.float32)
    weights[8:20, 4:12] = rng.normal(size=(12, 8))

    def score_fn(x):
        return (x * weights).sum(axis=(1, 2)) ** 2

    maps = np.stack([np.asarray(explain.rise(score_fn, mel * scale, jax.random.key(0),
                                             n_masks=200, centre=True, baseline=0.0))
                     for scale in (1e-3, 1.0, 1e3)])
    stored, scale = c6._normalised(maps)
    for m, s, k in zip(maps, stored, scale, strict=True):  # each map to 1e-3 of its range
        np.testing.assert_allclose(s.astype(np.float32) * k, m, atol=1e-3 * np.abs(m).max())
    regions = rng.random((3, 32, 32)) < 0.3
    for measure in c6.MEASURES:
        exact = c6_verdicts.shares(maps, regions, measure)
        assert np.max(np.abs(c6_verdicts.shares(stored, regions, measure) - exact)) < 1e-3


def test_deletion_share_against_a_naive_reference():
    score = np.array([1.0, 1.0, 2.0, 0.0])
    machine = np.array([3.0, 1.0, 1.0, 0.0])
    noise = np.array([0.0, 2.0, 2.0, 0.0])
    want = [2 / 3, 0.0, 1.0, 0.5]  # |dm| / (|dm| + |dn|), 1/2 when nothing moves
    np.testing.assert_allclose(c6_verdicts.deletion_share(score, machine, noise), want)


# ------------------------------------------------------------------ hand-made records

def _hand_made(effect, *, seeds: int = 6, per_class: int = 4, aucs=()):
    """c6-shaped records: sub-cluster AdaCos's maps put ``effect`` times more magnitude on
    the machine-dominated bins (negative: on the noise-dominated ones) and a bump of
    ``effect`` on the anomaly region, its deletions move the score by the machine 1 + effect
    times as much as by the noise (1 / (1 - effect) for a negative effect); the rivals' maps
    and deletions ignore the split. The (method, anomaly kind) pairs of ``aucs`` have scores
    that miss that kind's anomalies; the others separate them. A sequence of effects gives
    seed s the effect s modulo its length."""
    effects = np.atleast_1d(effect)
    rng = np.random.default_rng(int(100 * effects.sum()) % 997 + seeds)
    box = c6.box_mask()
    n_classes, normal = 6, 4
    columns = {name: [] for name in ("unit", "method", "seed", "clip", "class", "map", "label",
                                     "anomaly", "score", "deleted_machine", "deleted_noise",
                                     "twin_score", "level_score", "loss_settling")}
    maps = {}
    for seed in range(seeds):
        effect = float(effects[seed % effects.size])
        kinds = np.repeat(["none", *c6.ANOMALIES], [normal * n_classes,
                                                    *[per_class * n_classes] * 2])
        labels = (kinds != "none").astype(int)
        classes = np.r_[np.repeat(np.arange(n_classes), normal),
                        np.tile(np.repeat(np.arange(n_classes), per_class), 2)]
        n = labels.size
        dominant = rng.random((n, 32, 32)) < rng.uniform(0.15, 0.3, (n, 1, 1))
        explained = np.flatnonzero(labels == 1)
        region = np.zeros((explained.size, 32, 32), bool)
        for i in range(explained.size):  # a band of one or two mel bands, part of the clip
            band, start = rng.integers(0, 31), rng.integers(0, 16)
            region[i, start:start + 16, band:band + 1 + i % 2] = True
        for method in c6.METHODS:
            own = method == "subcluster-adacos"
            score = rng.normal(size=n) + 4.0 * labels * np.asarray(
                [(method, k) not in aucs for k in kinds])
            # per map: magnitude on the machine-dominated bins (g > 0) or on the others
            g = effect if own else 0.0
            gain = 1.0 + max(g, 0.0) * dominant + max(-g, 0.0) * ~dominant
            sal = (rng.normal(size=(n, 32, 32)) * gain)[explained] + (
                effect * region if own else 0.0)
            d_noise = rng.uniform(0.5, 1.5, n)
            d_machine = d_noise * ((1.0 + effect) if own and effect > 0 else
                                   1.0 / (1.0 - effect) if own else 1.0)
            for name, value in (("unit", f"method={method},seed={seed}"), ("method", method),
                                ("seed", seed), ("loss_settling", 0.0)):
                columns[name].append(np.full(n, value))
            map_index = np.full(n, -1)
            map_index[explained] = np.arange(explained.size)
            for name, value in (("clip", np.arange(n)), ("class", classes),
                                ("map", map_index), ("label", labels), ("anomaly", kinds),
                                ("score", score), ("deleted_machine", score + d_machine),
                                ("deleted_noise", score - d_noise),
                                ("twin_score", rng.normal(size=n)),
                                ("level_score", rng.normal(size=n))):
                columns[name].append(value)
            # the class-averaged fill's maps: the same with other noise added
            fills = {"class": sal, "average": sal + rng.normal(size=sal.shape),
                     "twin_class": rng.normal(size=sal.shape)}
            maps[method, seed] = {"dominant": dominant, "box": box, "anomaly_region": region}
            for fill, values in fills.items():
                scale = np.abs(values).max(axis=(1, 2))
                maps[method, seed][f"saliency_{fill}"] = (values / scale[:, None, None]
                                                          ).astype(np.float16)
                maps[method, seed][f"saliency_scale_{fill}"] = scale.astype(np.float32)
    return {k: np.concatenate(v) for k, v in columns.items()}, maps


def _verdicts(analysis):
    return {r.id: r.verdict for r in analysis.results}


def test_supported_when_adacos_listens_to_the_machine():
    table, maps = _hand_made(2.0)
    analysis = c6_verdicts.analyse(table, maps, n_resamples=200)
    assert _verdicts(analysis) == dict.fromkeys(c6.CRITERIA, "SUPPORTED")
    assert analysis.withheld == {}


def test_the_twin_rows_say_what_training_added_to_the_maps():
    table, maps = _hand_made(2.0)
    gap = c6_verdicts.reported(c6_verdicts.map_table(table, maps), n_resamples=200)[
        "trained - twin"]
    # the hand-made AdaCos maps sit on the machine, its twin's are noise; Deep SVDD's are
    # noise both trained and untrained
    assert gap["tone: sub-cluster AdaCos absolute/machine/class"].low > 0
    deep = gap["tone: Deep SVDD absolute/machine/class"]
    assert deep.low < 0 < deep.high


def test_contradicted_when_adacos_listens_to_the_noise():
    table, maps = _hand_made(-0.9)
    analysis = c6_verdicts.analyse(table, maps, n_resamples=200)
    verdicts = _verdicts(analysis)
    for claim_id in ("C6.a", "C6.b", "C6.c", "C6.e"):
        assert verdicts[claim_id] == "CONTRADICTED"
        assert all("reversed" in p.decision.reading for p in {
            r.id: r for r in analysis.results}[claim_id].parts)
    # a negative bump in the box: the positive share there falls below the box's area
    assert verdicts["C6.d"] == "CONTRADICTED"


def test_inconclusive_when_the_seeds_disagree():
    # two seeds listen to the machine, two to the noise: the interval over seeds holds both
    # 0 and the smallest effect of interest
    table, maps = _hand_made([2.0, -0.6], seeds=4)
    analysis = c6_verdicts.analyse(table, maps, n_resamples=200)
    results = {r.id: r for r in analysis.results}
    for claim_id in ("C6.a", "C6.e"):
        assert results[claim_id].verdict == "INCONCLUSIVE"
        assert results[claim_id].detectable
        delta = c6.CRITERIA[claim_id]["delta"]
        for part in results[claim_id].parts:
            assert part.interval.low < 0 and part.interval.high > delta


def test_the_gate_withholds_a_method_that_misses_the_anomaly():
    # a rival below the gate on one kind: its comparisons there are withheld, the rest decided
    table, maps = _hand_made(2.0, aucs={("deep-svdd", "tone")})
    analysis = c6_verdicts.analyse(table, maps, n_resamples=200)
    assert analysis.gate["deep-svdd", "tone"] < c6.GATE_AUC
    assert min(v for k, v in analysis.gate.items() if k != ("deep-svdd", "tone")) >= 0.8
    assert set(analysis.withheld) == set(c6.CRITERIA)
    for parts in analysis.withheld.values():
        assert list(parts) == ["tone: sub-cluster AdaCos - Deep SVDD"]
        assert "no verdict" in parts["tone: sub-cluster AdaCos - Deep SVDD"]
    for result in analysis.results:
        assert [p.name for p in result.parts] == [
            n for n in c6.CRITERIA[result.id]["comparisons"]
            if n != "tone: sub-cluster AdaCos - Deep SVDD"]
        assert result.verdict == "SUPPORTED"
    # the intervals of the comparisons kept do not depend on what the gate withheld
    full = {(r.id, p.name): p.interval for r in c6_verdicts.analyse(
        *_hand_made(2.0), n_resamples=200).results for p in r.parts}
    for result in analysis.results:
        for part in result.parts:
            assert part.interval == full[result.id, part.name]
    # the explained method below the gate on one kind: no verdict on that kind
    table, maps = _hand_made(2.0, aucs={("subcluster-adacos", "tone")})
    analysis = c6_verdicts.analyse(table, maps, n_resamples=200)
    assert {k: sorted(v) for k, v in analysis.withheld.items()} == {
        k: sorted(n for n in spec["comparisons"] if n.startswith("tone:"))
        for k, spec in c6.CRITERIA.items()}
    assert all(p.name.startswith("harmonic:") for r in analysis.results for p in r.parts)
    # ... and on both: no verdict at all
    table, maps = _hand_made(2.0, aucs={("subcluster-adacos", k) for k in c6.ANOMALIES})
    analysis = c6_verdicts.analyse(table, maps, n_resamples=200)
    assert {k: len(v) for k, v in analysis.withheld.items()} == dict.fromkeys(c6.CRITERIA, 6)
    assert [r.verdict for r in analysis.results] == [claims.WITHHELD] * len(c6.CRITERIA)
    for result in analysis.results:
        assert result.parts == () and result.figures == {"delta": result.delta}
        # the reason names each miss once: the explained method on both kinds
        assert result.summary.count("sub-cluster AdaCos detects") == 2, result.summary
        assert result.summary.startswith("no verdict: ")


def test_map_table_refuses_clips_that_do_not_pair():
    table, maps = _hand_made(1.0, seeds=2)
    rows = (table["method"] == "autoencoder") & (table["seed"] == 1) & (table["map"] >= 0)
    table["class"][np.flatnonzero(rows)[0]] += 1
    with pytest.raises(ValueError, match="must pair"):
        c6_verdicts.map_table(table, maps)


def test_old_measure_is_the_positive_share_with_the_averaged_fill():
    table, maps = _hand_made(1.0, seeds=2)
    rows = c6_verdicts.map_table(table, maps)
    old = c6_verdicts.old_measure(rows, n_resamples=100)
    sal = maps["subcluster-adacos", 0]["saliency_average"].astype(np.float32)
    unit = (table["seed"] == 0) & (table["method"] == "subcluster-adacos")
    explained = np.flatnonzero(table["label"][unit])
    dominant = maps["subcluster-adacos", 0]["dominant"][explained]
    seed0 = [explain.region_share(s, r) for s, r in zip(sal, dominant, strict=True)]
    column = rows["subcluster-adacos|positive/machine/average"]
    np.testing.assert_allclose(column[rows["seed"] == 0], seed0, rtol=1e-12)
    tone = rows["anomaly"] == "tone"
    assert old["mean"]["subcluster-adacos", "tone", "machine"] == pytest.approx(
        column[tone].mean())
    box = [explain.region_share(s, maps["subcluster-adacos", 0]["box"])
           for s, k in zip(sal, table["anomaly"][unit][explained], strict=True) if k == "tone"]
    np.testing.assert_allclose(
        rows["subcluster-adacos|positive/box/average"][tone & (rows["seed"] == 0)], box,
        rtol=1e-12)
    assert set(old["intervals"]) == {(k, r, f"sub-cluster AdaCos - {n}")
                                     for k in c6.ANOMALIES for r in c6_verdicts.OLD_REGIONS[k]
                                     for n in ("chance", "Deep SVDD", "autoencoder")}


def test_without_the_noise_recordings_the_run_stops_before_any_unit(tmp_path, monkeypatch,
                                                                      capsys):
    from asdtheory.repro import cli

    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path))  # no noise/ folder here
    code = cli.main(["experiment", "run", "c6", "--size", "smoke", "--results",
                     str(tmp_path / "results"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "experiment c6" in err and "lacks them; set ASDTHEORY_DATA" in err
    assert not list((tmp_path / "results").rglob("provenance.json"))


def test_detection_contrasts_say_whether_training_made_a_detector():
    # trained scores separate every kind except Deep SVDD's tone; twins and levels are noise
    table, _ = _hand_made(1.0, aucs={("deep-svdd", "tone")})
    contrasts = c6_verdicts.detection_contrasts(table, n_resamples=200)
    for (method, kind, rival), difference in contrasts.items():
        if (method, kind) == ("deep-svdd", "tone"):
            assert difference.low < 0 < difference.high, (method, kind, rival)
        else:
            assert difference.low > 0.3, (method, kind, rival)


def test_by_method_turns_a_reported_group_into_rows_with_a_column_per_method():
    group = {f"{kind}: {c6.LABELS[m]} {stat}": (kind, m, stat)
             for kind in c6.ANOMALIES for stat in ("absolute/machine/class", "deletion")
             for m in c6.METHODS}
    rows = c6_verdicts.by_method(group)
    assert list(rows) == [f"{k} {s}" for k in c6.ANOMALIES
                          for s in ("absolute/machine/class", "deletion")]
    for row, cells in rows.items():
        assert list(cells) == [c6.LABELS[m] for m in c6.METHODS]
        for label, (kind, method, stat) in cells.items():
            assert row == f"{kind} {stat}" and c6.LABELS[method] == label
