"""Ranking metrics of many resampled score vectors at once, for the bootstrap intervals of
the experiments' analyses (``claims.hierarchical_bootstrap(..., vectorized=True)`` calls them
with every resampled slot of a seed in one array). Each equals the one-vector function of
``asdtheory.evaluation`` row by row (the tests check)."""

from __future__ import annotations

import numpy as np

__all__ = ["areas", "group_hmean", "official_score"]

EPS = np.finfo(np.float64).eps


def areas(y: np.ndarray, s: np.ndarray, max_fpr: float = 0.1) -> np.ndarray:
    """AUC and McClish-standardised pAUC, as ``evaluation.auc`` / ``pauc`` compute them
    (scikit-learn's roc_auc_score), of every row of (rows, clips) labels ``y`` and scores
    ``s`` at once: (rows, 2). The bootstrap evaluates them ~10^6 times. Tied scores make one
    ROC point (the path crosses a tie on the diagonal), as in scikit-learn."""
    y, s = np.atleast_2d(y).astype(np.float64), np.atleast_2d(s)
    order = np.argsort(-s, axis=1, kind="stable")
    s, y = np.take_along_axis(s, order, 1), np.take_along_axis(y, order, 1)
    n = s.shape[1]
    # Every clip takes the ROC point of the last clip of its tie: ties collapse to one point.
    last = np.ones_like(s, bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    end = np.minimum.accumulate(np.where(last, np.arange(n), n)[:, ::-1], axis=1)[:, ::-1]
    tps = np.take_along_axis(np.cumsum(y, axis=1), end, 1)
    fps = np.take_along_axis(np.cumsum(1 - y, axis=1), end, 1)
    zero = np.zeros((s.shape[0], 1))
    tpr = np.hstack([zero, tps / tps[:, -1:]])
    fpr = np.hstack([zero, fps / fps[:, -1:]])
    f0, f1, t0, t1 = fpr[:, :-1], fpr[:, 1:], tpr[:, :-1], tpr[:, 1:]
    auc = np.sum((f1 - f0) * (t0 + t1) / 2, axis=1)
    # The part of each segment left of max_fpr, its tpr interpolated at the cut.
    cut = np.clip(max_fpr, f0, f1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_cut = np.where(f1 > f0, t0 + (t1 - t0) * (cut - f0) / (f1 - f0), t1)
    partial = np.sum((cut - f0) * (t0 + t_cut) / 2, axis=1)
    low = max_fpr ** 2 / 2
    return np.column_stack([auc, 0.5 * (1 + (partial - low) / (max_fpr - low))])


def group_hmean(y: np.ndarray, s: np.ndarray, machine: np.ndarray) -> np.ndarray:
    """``evaluation.group_metrics(y, s, machine)["hmean"]`` of every row of (rows, clips)
    ``y`` and ``s`` (or of one clip vector): the harmonic mean of the AUC and pAUC averaged
    over machines; ``machine`` (clips,) is shared by the rows."""
    mean = np.mean([areas(np.atleast_2d(y)[:, machine == m], np.atleast_2d(s)[:, machine == m])
                    for m in np.unique(machine)], axis=0)
    hmean = 2 * mean[:, 0] * mean[:, 1] / (mean[:, 0] + mean[:, 1])
    return hmean if np.ndim(s) == 2 else float(hmean[0])


def official_score(y: np.ndarray, s: np.ndarray, machine: np.ndarray, domain: np.ndarray
                   ) -> np.ndarray:
    """The official DCASE score of every row of (rows, clips) labels ``y`` and scores ``s``,
    over the clips' machines (``machine``, ``domain``: (clips,), shared by the rows): the
    harmonic mean of every official value, each floored at machine epsilon. A machine with
    target-domain clips contributes AUC_source (source normals + all its anomalies),
    AUC_target likewise and the pAUC of all its clips (DCASE 2022-2024 rules); a machine
    without domains (DCASE 2020, MIMII) its AUC and pAUC."""
    y, s = np.atleast_2d(y), np.atleast_2d(s)
    labels = y[0]
    values = []
    for m in np.unique(machine):
        clips = machine == m
        if np.any(domain[clips] == "target"):
            for name in ("source", "target"):
                subset = clips & ((labels == 1) | (domain == name))
                values.append(areas(y[:, subset], s[:, subset])[:, 0])
            values.append(areas(y[:, clips], s[:, clips])[:, 1])
        else:
            values.extend(areas(y[:, clips], s[:, clips]).T)
    values = np.maximum(np.column_stack(values), EPS)
    return values.shape[1] / np.sum(1.0 / values, axis=1)
