"""DCASE Task 2 submission files: per-clip anomaly scores and decision results, out and in.

The DCASE 2022-2024 Task 2 challenges take one pair of CSV files per machine type and
section, without a header, one row ``<clip file name>,<value>`` per test clip::

    anomaly_score_valve_section_00_test.csv:
        section_00_source_test_normal_0003_pat_00.wav,0.8125
    decision_result_valve_section_00_test.csv (1: anomalous, 0: normal):
        section_00_source_test_normal_0003_pat_00.wav,0

(names and layout as the official evaluator ``nttcslab/dcase2023_task2_evaluator`` reads
them in ``dcase2023_task2_evaluator.py``, ``output_result``; the baseline
``nttcslab/dcase2023_task2_baseline_ae`` writes them with ``csv.writer`` in
``networks/dcase2023t2_ae/dcase2023t2_ae.py``, ``DCASE2023T2AE.test``).

* :func:`write_submission` writes the files of a system's test clips; with the scores of the
  normal training clips it also writes the decisions (:func:`decision_threshold`).
* :func:`truth_clips` lists the labelled test clips under a data folder (the ground truth
  is in the DCASE 2021-2024 clip names: domain and label), :func:`read_scores` reads a
  folder of score files written by any system back onto those clips, strictly: a missing,
  duplicated or unknown clip, a score that is not a finite number or a file for a machine
  and section the ground truth lacks is reported with the file, the line and the fix.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from asdtheory.data import dcase

__all__ = ["DECISION_QUANTILE", "clip_name", "decision_threshold", "read_scores",
           "submission_name", "truth_clips", "write_submission"]

# The DCASE 2023 baseline's ``--decision_threshold: 0.9`` (baseline.yaml): the 90th percentile
# of the gamma distribution fitted to the normal training clips' anomaly scores.
DECISION_QUANTILE = 0.9
KINDS = ("anomaly_score", "decision_result")
_SCORE_FILE = re.compile(r"anomaly_score_(?P<machine>.+)_section_(?P<section>\d{2})_test\.csv")
MAX_LISTED = 10  # missing clips listed per file; the rest are counted


def submission_name(kind: str, machine: str, section: int) -> str:
    """``<kind>_<machine>_section_<NN>_test.csv``, kind "anomaly_score" or
    "decision_result"."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    return f"{kind}_{machine}_section_{int(section):02d}_test.csv"


def clip_name(clip: dcase.ClipInfo) -> str:
    """A clip's name in a submission file: its file name; for a MIMII recording, whose file
    names repeat in the normal/ and abnormal/ folders of every machine ID, the DCASE 2020 name
    of the same clip, ``<normal|anomaly>_id_<NN>_<NNNNNNNN>.wav``."""
    if clip.year_format != "mimii":
        return clip.path.name
    label = "anomaly" if clip.is_anomaly else "normal"
    return f"{label}_id_{clip.section:02d}_{clip.index:08d}.wav"


def decision_threshold(normal_train_scores, *, quantile: float = DECISION_QUANTILE) -> float:
    """The anomaly score above which a clip is declared anomalous, as the DCASE 2023 baseline
    sets it: a gamma distribution (shape, location and scale, maximum likelihood:
    ``scipy.stats.gamma.fit``) is fitted to the anomaly scores of normal training clips and
    the threshold is its ``quantile`` (0.9) quantile (``nttcslab/dcase2023_task2_baseline_ae``,
    ``networks/base_model.py``: ``BaseModel.fit_anomaly_score_distribution`` and
    ``BaseModel.calc_decision_threshold``; a clip is anomalous when its score is greater).

    The baseline fits the distribution to the reconstruction losses of its training batches
    and validation clips; here it is fitted to the per-clip scores of the normal training
    clips, scored by the trained system as it scores test clips. Both are in-sample scores,
    so the threshold leans low (more clips declared anomalous) for a system that fits its
    training clips closely: under the k-means back-end every target-domain training clip is a
    centre of its own and scores about 0, and with few source clips per centre (the mini
    protocol, small fixtures) the threshold falls near 0 and nearly every test clip is
    declared anomalous. The decisions do not enter the official score (AUC and pAUC use the
    scores alone).
    """
    scores = np.asarray(normal_train_scores, np.float64)
    if scores.ndim != 1 or scores.size < 2 or not np.all(np.isfinite(scores)):
        raise ValueError("the decision threshold needs at least two finite anomaly scores of "
                         f"normal training clips, got {scores.size} value(s) "
                         f"({int(np.sum(~np.isfinite(scores)))} not finite).")
    if np.ptp(scores) == 0:
        raise ValueError("the normal training clips all have the same anomaly score "
                         f"{scores[0]}: a gamma distribution cannot be fitted to them.")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}.")
    shape, loc, scale = stats.gamma.fit(scores)
    return float(stats.gamma.ppf(quantile, shape, loc=loc, scale=scale))


def _section_key(clip: dcase.ClipInfo) -> tuple[str, int]:
    if clip.machine is None:
        raise ValueError(f"{clip.path}: the machine type of this clip is unknown; clips must "
                         "lie in <machine>/<train|test>/ folders.")
    return (clip.machine, clip.section)


def _write_rows(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def write_submission(folder, clips: Sequence[dcase.ClipInfo], scores, *,
                     train_clips: Sequence[dcase.ClipInfo] | None = None, train_scores=None,
                     quantile: float = DECISION_QUANTILE,
                     thresholds: Mapping[tuple[str, int], float] | None = None) -> list[Path]:
    """Writes the anomaly scores of test ``clips`` as DCASE submission files in ``folder``.

    One ``anomaly_score_<machine>_section_<NN>_test.csv`` per machine type and section, rows
    ``<file name>,<score>`` sorted by file name, scores in Python's shortest round-trip form
    (reading them back gives the same floats, hence the same table). With ``train_clips`` and
    their ``train_scores`` also ``decision_result_..._test.csv``: 1 where the score exceeds
    the section's :func:`decision_threshold` (fitted to the scores of the section's normal
    training clips), else 0. Or with ``thresholds`` given directly, {(machine, section):
    threshold} (a saved system's, ``detect.store``).

    Returns the paths written.
    """
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(clips),) or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be {len(clips)} finite numbers, one per clip; got shape "
                         f"{scores.shape}.")
    if (train_clips is None) != (train_scores is None):
        raise ValueError("train_clips and train_scores go together: the decisions need the "
                         "anomaly scores of the normal training clips.")
    if thresholds is not None and train_clips is not None:
        raise ValueError("pass the training clips' scores or the thresholds, not both.")
    thresholds = dict(thresholds or {})
    if thresholds:
        missing = sorted({_section_key(c) for c in clips} - set(thresholds))
        if missing:
            raise ValueError(f"no decision threshold for (machine, section) {missing}.")
    if train_clips is not None:
        train_scores = np.asarray(train_scores, np.float64)
        if train_scores.shape != (len(train_clips),):
            raise ValueError(f"train_scores must hold one score per training clip "
                             f"({len(train_clips)}), got shape {train_scores.shape}.")
        for key in sorted({_section_key(c) for c in clips}):
            normal = [s for c, s in zip(train_clips, train_scores, strict=True)
                      if _section_key(c) == key and not c.is_anomaly]
            if not normal:
                raise ValueError(f"machine {key[0]!r} section {key[1]:02d} has no normal "
                                 "training clips to set its decision threshold from.")
            if len(normal) > 1 and np.ptp(normal) == 0:
                warnings.warn(f"no decision_result file for machine {key[0]!r} section "
                              f"{key[1]:02d}: its {len(normal)} normal training clips all score "
                              f"{normal[0]} (e.g. a k-means back-end with a centre per training "
                              "clip), so no threshold can be fitted; its anomaly scores are "
                              "written.", stacklevel=2)
                continue
            thresholds[key] = decision_threshold(normal, quantile=quantile)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sections: dict[tuple[str, int], list[tuple[str, float]]] = {}
    for clip, score in zip(clips, scores, strict=True):
        sections.setdefault(_section_key(clip), []).append((clip_name(clip), float(score)))
    written = []
    for (machine, section), rows in sorted(sections.items()):
        rows.sort()
        path = folder / submission_name("anomaly_score", machine, section)
        _write_rows(path, [(name, repr(score)) for name, score in rows])
        written.append(path)
        if (machine, section) in thresholds:
            threshold = thresholds[(machine, section)]
            path = folder / submission_name("decision_result", machine, section)
            _write_rows(path, [(name, str(int(score > threshold))) for name, score in rows])
            written.append(path)
    return written


def truth_clips(root, *, protocol: str = "all") -> list[dcase.ClipInfo]:
    """The labelled test clips whose scores a submission must hold, from their names.

    ``protocol="all"``: every test clip with a DCASE 2021-2024 development name (domain and
    label in the name) below ``root`` -- a data root, a ``dcase2023t2`` folder, a machine
    folder or a ``<machine>/test`` folder; the machine type is the folder above ``test/``.
    ``protocol="mini"``: the 140 test clips of ``dcase.valve_mini_protocol`` under the data
    root ``root`` (what ``asdtheory run --protocol mini`` scores).
    Sorted by machine, section and file name.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"ground truth folder {root} does not exist; pass the data "
                                "root or the test folders the scores were computed on.")
    if protocol == "mini":
        data = root.parent if root.name == "dcase2023t2" else root
        clips = dcase.valve_mini_protocol(data).test
    elif protocol == "all":
        clips = [c for c in dcase.index_folder(root, skip_unknown=True)
                 if c.split == "test" and c.label is not None and c.year_format == 2021
                 and c.machine is not None]
    else:
        raise ValueError(f"protocol must be 'all' or 'mini', got {protocol!r}.")
    if not clips:
        raise ValueError(f"no labelled DCASE test clips under {root} (names such as "
                         "section_00_source_test_normal_0000_pat_00.wav in <machine>/test/); "
                         "pass the development data root the scores were computed on.")
    seen: dict[tuple, Path] = {}
    for clip in clips:
        key = (*_section_key(clip), clip_name(clip))
        if key in seen:
            raise ValueError(f"the ground truth under {root} holds clip {clip_name(clip)} of "
                             f"machine {clip.machine!r} twice ({seen[key]} and {clip.path}); "
                             "pass a folder that holds one copy of the data.")
        seen[key] = clip.path
    return sorted(clips, key=lambda c: (*_section_key(c), clip_name(c)))


def _read_file(path: Path, expected: dict[str, int], scores: np.ndarray,
               problems: list[str]) -> None:
    """Reads one score file onto ``scores`` (indexed by ``expected``: file name -> row),
    appending a message per problem."""
    seen: dict[str, int] = {}
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            where = f"{path}:{line}"
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line carries no score
            if len(row) != 2:
                problems.append(f"{where}: expected two fields '<clip file name>,<score>', got "
                                f"{len(row)}: {','.join(row)!r}; write one clip per line.")
                continue
            name, text = row[0].strip(), row[1].strip()
            if name in seen:
                problems.append(f"{where}: clip {name} already scored on line {seen[name]}; "
                                "keep one row per clip.")
                continue
            seen[name] = line
            if name not in expected:
                problems.append(f"{where}: {name} is not a test clip of this machine and "
                                "section in the ground truth; remove the row or pass the "
                                "--truth folder that holds the clip.")
                continue
            try:
                value = float(text)
            except ValueError:
                problems.append(f"{where}: score {text!r} of {name} is not a number; write "
                                "the anomaly score as a decimal number (e.g. 0.8125).")
                continue
            if not math.isfinite(value):
                problems.append(f"{where}: score {text!r} of {name} is not finite; every clip "
                                "needs a finite anomaly score.")
                continue
            scores[expected[name]] = value
    missing = sorted(set(expected) - set(seen))
    if missing:
        listed = ", ".join(missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        problems.append(f"{path}: no score for {len(missing)} of the {len(expected)} test "
                        f"clips: {listed}{more}; add a row '<clip file name>,<score>' for "
                        "each.")


def read_scores(folder, truth: Sequence[dcase.ClipInfo]) -> np.ndarray:
    """The anomaly scores of a folder of ``anomaly_score_<machine>_section_<NN>_test.csv``
    files (any system's), one per clip of ``truth`` (:func:`truth_clips`) in its order.

    Every problem of the folder is reported at once, in one ValueError, each with the file,
    the line and the fix: a missing score file or clip, a duplicated clip, a clip or a file
    (machine type and section) the ground truth does not have, a score that is not a finite
    number. Other files in the folder (decision results, logs) are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"score folder {folder} does not exist.")
    index: dict[tuple[str, int], dict[str, int]] = {}
    for row, clip in enumerate(truth):
        index.setdefault(_section_key(clip), {})[clip_name(clip)] = row
    scores = np.full(len(truth), np.nan)
    problems: list[str] = []
    found = set()
    for path in sorted(folder.glob("anomaly_score_*.csv")):
        match = _SCORE_FILE.fullmatch(path.name)
        if match is None:
            problems.append(f"{path}: not a DCASE score file name; name it "
                            "anomaly_score_<machine>_section_<NN>_test.csv.")
            continue
        key = (match["machine"], int(match["section"]))
        if key not in index:
            known = ", ".join(f"{m} section {s:02d}" for m, s in sorted(index))
            problems.append(f"{path}: scores machine {key[0]!r} section {key[1]:02d}, which "
                            f"the ground truth does not hold (it holds {known}); remove the "
                            "file or pass the --truth folder with that machine's test clips.")
            continue
        found.add(key)
        _read_file(path, index[key], scores, problems)
    for machine, section in sorted(set(index) - found):
        name = submission_name("anomaly_score", machine, section)
        problems.append(f"{folder / name}: missing; the ground truth has "
                        f"{len(index[(machine, section)])} test clips of machine {machine!r} "
                        f"section {section:02d} that need scores.")
    if problems:
        raise ValueError(f"{len(problems)} problem(s) with the score files in {folder}:\n  "
                         + "\n  ".join(problems))
    return scores
