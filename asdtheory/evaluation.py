"""DCASE Task 2 evaluation: AUC, pAUC, per-section tables, the official score and its CI.

Anomaly scores are "higher = more anomalous"; labels are 0 (normal) / 1 (anomalous).

* :func:`auc`, :func:`pauc` -- ROC AUC and the McClish-standardised partial AUC over
  FPR in [0, p], computed by scikit-learn's ``roc_auc_score`` exactly as the official DCASE
  evaluators do (a random scorer gets pAUC 0.5, a perfect one 1).
* :func:`dcase_table` -- one :class:`SectionScores` per machine type and section under the
  rules of a challenge year, :func:`official_score` -- the single ranking number,
  :func:`format_table` -- a text table.
* :func:`confidence_interval` -- stratified bootstrap or jackknife interval of the official
  score.
* :func:`paired_difference` -- the difference of a metric between two detectors scored on the
  same clips (and seeds), with a paired bootstrap interval over clips and seeds;
  :func:`paired_contrast` -- any weighted sum of such metrics (a difference of differences).

Rules (``rules=``), following the official evaluators of DCASE Task 2:

* ``"2022"``, ``"2023"``, ``"2024"``: per section, AUC_source uses the source-domain normal
  clips and ALL anomalous clips of the section, AUC_target likewise with the target-domain
  normals; pAUC uses all clips of the section. Official score = harmonic mean over the flat
  list of every AUC_source, AUC_target and pAUC value, each floored at machine epsilon.
* ``"2021"``: per section and domain, AUC and pAUC on that domain's clips only (its normals
  and its anomalies); score = harmonic mean over all of them (floored at machine epsilon).
* ``"2020"``: no domains; per section AUC and pAUC on all its clips. The 2020 evaluator only
  reports arithmetic means, so the score here is the arithmetic mean of all AUC and pAUC
  values.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Sequence

import jax
import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

__all__ = [
    "RULES",
    "ConfidenceInterval",
    "PairedDifference",
    "SectionScores",
    "auc",
    "confidence_interval",
    "dcase_table",
    "format_table",
    "group_metrics",
    "harmonic_mean",
    "official_score",
    "paired_contrast",
    "paired_difference",
    "pauc",
]

RULES = ("2020", "2021", "2022", "2023", "2024")
DOMAINS = ("source", "target")
# The floor of the official evaluators (sys.float_info.epsilon) before the harmonic mean.
EPS = sys.float_info.epsilon


@dataclasses.dataclass(frozen=True)
class SectionScores:
    """Scores of one machine type and section. Metrics a rule does not define are None.

    ``auc`` and ``pauc`` use all clips of the section; ``auc_source``/``auc_target`` follow
    the domain rules of ``rules`` (2021-2024); ``pauc_source``/``pauc_target`` exist only
    under the 2021 rules. The counts are clips of the section per domain and label.
    A section whose clips cannot be scored (``dcase_table(..., unscorable="n/a")``) has every
    metric None and says why in ``unscorable``.
    """

    machine: str
    section: str
    rules: str
    auc: float | None
    pauc: float | None
    auc_source: float | None
    auc_target: float | None
    pauc_source: float | None
    pauc_target: float | None
    n_source_normal: int
    n_source_anomaly: int
    n_target_normal: int
    n_target_anomaly: int
    unscorable: str | None = None

    def official_values(self) -> list[float]:
        """The values of this section that enter the official score under its rules."""
        if self.rules == "2020":
            return [self.auc, self.pauc]
        if self.rules == "2021":
            return [self.auc_source, self.auc_target, self.pauc_source, self.pauc_target]
        return [self.auc_source, self.auc_target, self.pauc]


@dataclasses.dataclass(frozen=True)
class ConfidenceInterval:
    """A ``level`` confidence interval [low, high] of the official score ``estimate``."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_resamples: int
    rules: str


# ----------------------------------------------------------------------------- input checks


def _check_labels(y_true, name: str) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of 0/1 labels, got shape {y.shape}.")
    if y.size == 0:
        raise ValueError(f"{name} is empty; pass at least one normal and one anomalous clip.")
    if y.dtype != np.bool_ and not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{name} must hold 0 (normal) / 1 (anomalous), got dtype {y.dtype}.")
    if not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(
            f"{name} must be binary, 0 (normal) / 1 (anomalous); found other values "
            f"{bad.tolist()}. Map your labels to 0/1 first."
        )
    return y.astype(np.int64)


def _check_scores(scores, n: int, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores)
    if s.dtype == np.bool_ or not np.issubdtype(s.dtype, np.number):
        raise ValueError(f"{name} must be real anomaly scores, got dtype {s.dtype}.")
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one score per clip), got shape {s.shape}.")
    if s.shape[0] != n:
        raise ValueError(f"{name} has {s.shape[0]} entries but the labels have {n}; "
                         "pass one score per clip.")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        bad = int(np.size(s) - np.count_nonzero(np.isfinite(s)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf).")
    return s


def _check_both_classes(y: np.ndarray, name: str, where: str = "") -> None:
    n_anomaly = int(y.sum())
    if n_anomaly == 0 or n_anomaly == y.size:
        present = "anomalous (1)" if n_anomaly else "normal (0)"
        raise ValueError(
            f"{name} contains only {present} labels{where}; AUC needs at least one normal and "
            "one anomalous clip."
        )


def _check_max_fpr(max_fpr) -> float:
    if isinstance(max_fpr, bool) or not isinstance(max_fpr, (int, float, np.integer,
                                                              np.floating)):
        raise ValueError(f"max_fpr must be a real scalar in (0, 1], got {max_fpr!r}.")
    value = float(max_fpr)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"max_fpr must lie in (0, 1] (DCASE uses 0.1), got {value}.")
    return value


def _check_rules(rules) -> str:
    if rules not in RULES:
        raise ValueError(f"rules must be one of {RULES} (a string), got {rules!r}.")
    return rules


def _binary_problem(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = _check_labels(y_true, "y_true")
    s = _check_scores(scores, y.shape[0])
    _check_both_classes(y, "y_true")
    return y, s


# ------------------------------------------------------------------------------- AUC, pAUC


def auc(y_true, scores) -> float:
    """Area under the ROC curve: P(score of an anomaly > score of a normal), ties count 1/2.

    Args:
      y_true: (n,) labels, 0 normal / 1 anomalous; both classes must be present.
      scores: (n,) finite anomaly scores, higher = more anomalous.
    """
    y, s = _binary_problem(y_true, scores)
    return float(roc_auc_score(y, s))


def pauc(y_true, scores, *, max_fpr: float = 0.1) -> float:
    """McClish-standardised partial AUC over FPR in [0, p], p = ``max_fpr``.

    With A_p the area under the ROC curve (linearly interpolated at FPR = p) for FPR <= p,

        pAUC = 1/2 (1 + (A_p - p^2/2) / (p - p^2/2)),

    so a random scorer gets 0.5 and a perfect one 1 (D. K. McClish, "Analyzing a portion of
    the ROC curve", Med. Decis. Making 9, 1989). This is scikit-learn's
    ``roc_auc_score(max_fpr=p)``, used by every official DCASE Task 2 evaluator with p = 0.1.
    ``max_fpr = 1`` gives the plain AUC.
    """
    max_fpr = _check_max_fpr(max_fpr)
    y, s = _binary_problem(y_true, scores)
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


# --------------------------------------------------------------------------- DCASE tables


@dataclasses.dataclass(frozen=True)
class _Clips:
    """Validated per-clip arrays and the clip indices of each (machine, section)."""

    y: np.ndarray
    scores: np.ndarray
    is_target: np.ndarray
    groups: dict[tuple[str, str], np.ndarray]
    # Sections left out of ``groups`` because they cannot be scored: key -> (indices, reason).
    unscorable: dict[tuple[str, str], tuple[np.ndarray, str]] = dataclasses.field(
        default_factory=dict)


def harmonic_mean(a, b):
    """2 a b / (a + b), elementwise (the DCASE way of combining AUC and pAUC)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return 2.0 * a * b / (a + b)


def group_metrics(is_anomaly, scores, groups=None, *, max_fpr: float = 0.1) -> dict[str, float]:
    """AUC and pAUC (:func:`auc`, :func:`pauc`) within each group, averaged arithmetically
    over the groups, and hmean = their :func:`harmonic_mean`.

    Scoring each group separately (like DCASE sections) keeps a detector from being judged
    on how its score scales compare across groups (machines). ``groups`` None: one group.
    """
    y = _check_labels(is_anomaly, "is_anomaly")
    scores = _check_scores(scores, y.size)
    groups = np.zeros(scores.size, int) if groups is None else np.asarray(groups)
    if groups.shape != scores.shape:
        raise ValueError(f"groups must hold one group id per score, shape {scores.shape}; got "
                         f"{groups.shape}.")
    per_group = [(auc(y[groups == g], scores[groups == g]),
                  pauc(y[groups == g], scores[groups == g], max_fpr=max_fpr))
                 for g in np.unique(groups)]
    mean_auc, mean_pauc = np.mean(per_group, axis=0)
    return {"auc": float(mean_auc), "pauc": float(mean_pauc),
            "hmean": float(harmonic_mean(mean_auc, mean_pauc))}


def _section_name(value) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):02d}"
    return str(value)


def _per_clip(values, n: int, name: str) -> list:
    """Broadcasts a scalar (one machine/section for all clips) or checks a (n,) sequence."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        return [arr.item()] * n
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) (one entry per clip), "
                         f"got shape {arr.shape}.")
    return arr.tolist()


def _unscorable_reason(y: np.ndarray, is_target: np.ndarray, rules: str) -> str | None:
    """Why a section's clips cannot be scored under ``rules``; None when they can."""
    n_anomaly = int(y.sum())
    if n_anomaly == 0 or n_anomaly == y.size:
        present = "anomalous (1)" if n_anomaly else "normal (0)"
        return (f"is_anomaly contains only {present} labels; AUC needs at least one normal and "
                "one anomalous clip.")
    if rules == "2020":
        return None
    for dom, mask in (("source", ~is_target), ("target", is_target)):
        if not np.any(y[mask] == 0):
            return (f"domain has no {dom} normal clips; AUC_{dom} needs them (use "
                    "rules='2020' for data without domains).")
        if rules == "2021" and not np.any(y[mask] == 1):
            return (f"domain has no {dom} anomalous clips; the 2021 rules compute AUC_{dom} on "
                    "that domain's clips only.")
    return None


def _clips(machine, section, domain, is_anomaly, scores, rules,
           unscorable: str = "raise") -> _Clips:
    y = _check_labels(is_anomaly, "is_anomaly")
    n = y.shape[0]
    s = _check_scores(scores, n)
    domains = np.asarray(_per_clip(domain, n, "domain"), dtype=object)
    unknown = sorted({str(d) for d in domains if d not in DOMAINS})
    if unknown:
        raise ValueError(f"domain entries must be 'source' or 'target', got {unknown[:5]}.")
    is_target = domains == "target"
    machines = [str(m) for m in _per_clip(machine, n, "machine")]
    sections = [_section_name(v) for v in _per_clip(section, n, "section")]
    keys = list(zip(machines, sections, strict=True))
    groups = {key: np.flatnonzero([k == key for k in keys]) for key in sorted(set(keys))}
    skipped = {}
    for (m, sec), idx in list(groups.items()):
        reason = _unscorable_reason(y[idx], is_target[idx], rules)
        if reason is None:
            continue
        if unscorable == "raise":
            subject, _, rest = reason.partition(";")
            raise ValueError(f"{subject} for machine {m!r}, section {sec!r};{rest}")
        skipped[(m, sec)] = (groups.pop((m, sec)), reason)
        warnings.warn(f"machine {m!r}, section {sec!r} is scored n/a: {reason}", stacklevel=3)
    return _Clips(y=y, scores=s, is_target=is_target, groups=groups, unscorable=skipped)


def _section_scores(key: tuple[str, str], y, s, is_target, *, rules: str,
                    max_fpr: float) -> SectionScores:
    """The metrics of one section from its (already validated) clips."""
    source, target = ~is_target, is_target
    anomaly = y == 1
    domain_auc = {}
    domain_pauc = {}
    if rules != "2020":
        for name, dom in (("source", source), ("target", target)):
            # 2022-2024: this domain's normals + every anomaly; 2021: this domain's clips only.
            mask = dom if rules == "2021" else dom | anomaly
            domain_auc[name] = float(roc_auc_score(y[mask], s[mask]))
            if rules == "2021":
                domain_pauc[name] = float(roc_auc_score(y[mask], s[mask], max_fpr=max_fpr))
    return SectionScores(
        machine=key[0],
        section=key[1],
        rules=rules,
        auc=float(roc_auc_score(y, s)),
        pauc=float(roc_auc_score(y, s, max_fpr=max_fpr)),
        auc_source=domain_auc.get("source"),
        auc_target=domain_auc.get("target"),
        pauc_source=domain_pauc.get("source"),
        pauc_target=domain_pauc.get("target"),
        n_source_normal=int(np.sum(source & ~anomaly)),
        n_source_anomaly=int(np.sum(source & anomaly)),
        n_target_normal=int(np.sum(target & ~anomaly)),
        n_target_anomaly=int(np.sum(target & anomaly)),
    )


def _table(clips: _Clips, *, rules: str, max_fpr: float, index=None) -> list[SectionScores]:
    """Section rows, optionally on a resample ``index`` (clip indices, with repeats)."""
    rows = []
    for key, idx in clips.groups.items():
        sel = idx if index is None else index[key]
        rows.append(_section_scores(key, clips.y[sel], clips.scores[sel], clips.is_target[sel],
                                    rules=rules, max_fpr=max_fpr))
    return rows


def _unscorable_row(key: tuple[str, str], y, is_target, rules: str,
                    reason: str) -> SectionScores:
    anomaly = y == 1
    return SectionScores(
        machine=key[0], section=key[1], rules=rules, auc=None, pauc=None, auc_source=None,
        auc_target=None, pauc_source=None, pauc_target=None,
        n_source_normal=int(np.sum(~is_target & ~anomaly)),
        n_source_anomaly=int(np.sum(~is_target & anomaly)),
        n_target_normal=int(np.sum(is_target & ~anomaly)),
        n_target_anomaly=int(np.sum(is_target & anomaly)), unscorable=reason)


def dcase_table(*, machine, section, domain, is_anomaly, scores, max_fpr: float = 0.1,
                rules: str = "2023", unscorable: str = "raise") -> list[SectionScores]:
    """Per machine type and section scores under the official DCASE Task 2 rules.

    Args:
      machine: machine type of each clip, (n,) strings, or one string for all clips.
      section: section of each clip, (n,) strings or ints (ints print as two digits), or one
        value for all clips.
      domain: ``"source"`` or ``"target"`` per clip, or one value for all clips (for 2020
        data, which has no domains, pass ``"source"``; only the counts use it then).
      is_anomaly: (n,) 0/1 ground truth.
      scores: (n,) anomaly scores, higher = more anomalous.
      max_fpr: the pAUC range p (DCASE: 0.1).
      rules: challenge year, see the module docstring: "2022"-"2024" (AUC_source = source
        normals + all anomalies of the section, AUC_target likewise, pAUC on all clips),
        "2021" (per-domain AUC and pAUC) or "2020" (no domains).
      unscorable: what to do with a section whose clips cannot be scored (only normal or
        only anomalous clips; under the domain rules a domain without normal clips): "raise"
        a ValueError (default), or score it "n/a" -- a row with every metric None, a
        UserWarning, and the other sections scored (the official evaluators would stop; a
        joint run over many sections is better served by the rest of its table).

    Returns:
      one :class:`SectionScores` per (machine, section), sorted by machine then section.
    """
    rules = _check_rules(rules)
    max_fpr = _check_max_fpr(max_fpr)
    if unscorable not in ("raise", "n/a"):
        raise ValueError(f"unscorable must be 'raise' or 'n/a', got {unscorable!r}.")
    clips = _clips(machine, section, domain, is_anomaly, scores, rules, unscorable)
    rows = _table(clips, rules=rules, max_fpr=max_fpr)
    rows += [_unscorable_row(key, clips.y[idx], clips.is_target[idx], rules, reason)
             for key, (idx, reason) in clips.unscorable.items()]
    return sorted(rows, key=lambda r: (r.machine, r.section))


def _hmean(values: np.ndarray) -> float:
    return float(values.size / np.sum(1.0 / values))


def official_score(rows: Sequence[SectionScores]) -> float:
    """The single ranking number of a table from :func:`dcase_table`.

    2021-2024: harmonic mean over the flat list of the official values of every section
    (2022-2024: all AUC_source, AUC_target and pAUC; 2021: all per-domain AUC and pAUC), each
    floored at machine epsilon as the official evaluators do. 2020: arithmetic mean of all
    AUC and pAUC values. Sections scored n/a (``SectionScores.unscorable``) are left out: the
    score is over the scorable sections.

    A table that pools sections without domains (2020 rules: MIMII, DCASE 2020) with sections
    under the 2022-2024 rules, as a joint task over the recordings at hand does
    (``data.dcase.machines_at_hand``), is scored as the later years score: the harmonic mean
    over every official value of every section. Any other mixture of rules is an error.
    """
    rows = list(rows)
    if not rows or not all(isinstance(r, SectionScores) for r in rows):
        raise ValueError("rows must be a non-empty list of SectionScores from dcase_table.")
    rules = {r.rules for r in rows}
    if len(rules) != 1 and not _poolable(rules):
        raise ValueError(f"rows mix the rules of several years {sorted(rules)}; score each "
                         "table separately (only 2020 sections pool with those of one of "
                         "2022-2024).")
    scorable = [r for r in rows if r.unscorable is None]
    if not scorable:
        raise ValueError("no section of the table can be scored (every one is n/a): "
                         + "; ".join(f"{r.machine} {r.section}: {r.unscorable}" for r in rows))
    values = np.array([v for r in scorable for v in r.official_values()], dtype=np.float64)
    if rules == {"2020"}:
        return float(np.mean(values))
    return _hmean(np.maximum(values, EPS))


def _poolable(rules: set[str]) -> bool:
    return len(rules) == 2 and "2020" in rules and bool(rules & {"2022", "2023", "2024"})


def format_table(rows: Sequence[SectionScores]) -> str:
    """Fixed-width text table of the rows (numbers rounded to 4 digits) + the official score.

    >>> print(format_table(rows))  # doctest: +SKIP
    machine  section  AUC source  AUC target    pAUC  normals s/t  anomalies s/t
    valve    00           0.8125      0.6810  0.5895        20/20          50/50
    official score (DCASE 2023 rules, harmonic mean of 3 values): 0.6826
    """
    score = official_score(rows)
    lines = []
    for rules in dict.fromkeys(r.rules for r in rows):  # a pooled table: one block per rules
        lines += _table_lines([r for r in rows if r.rules == rules], rules)
    scorable = [r for r in rows if r.unscorable is None]
    n_values = sum(len(r.official_values()) for r in scorable)
    pooled = sorted({r.rules for r in rows})
    name = f"DCASE {pooled[0]} rules" if len(pooled) == 1 else (
        "pooled: DCASE " + " and ".join(pooled) + " rules")
    mean = "arithmetic" if pooled == ["2020"] else "harmonic"
    skipped = len(rows) - len(scorable)
    over = f" of the {len(scorable)} scorable of {len(rows)} sections" if skipped else ""
    return "\n".join([*lines, f"official score ({name}, {mean} mean of {n_values} values"
                              f"{over}): {score:.4f}"])


def _table_lines(rows: Sequence[SectionScores], rules: str) -> list[str]:
    metrics = {
        "2020": [("AUC", "auc"), ("pAUC", "pauc")],
        "2021": [("AUC source", "auc_source"), ("AUC target", "auc_target"),
                 ("pAUC source", "pauc_source"), ("pAUC target", "pauc_target")],
    }.get(rules, [("AUC source", "auc_source"), ("AUC target", "auc_target"),
                  ("pAUC", "pauc")])
    header = ["machine", "section"] + [title for title, _ in metrics]
    header += ["normals s/t", "anomalies s/t"]
    body = [
        [r.machine, r.section]
        + [("n/a" if r.unscorable else f"{getattr(r, field):.4f}") for _, field in metrics]
        + [f"{r.n_source_normal}/{r.n_target_normal}",
           f"{r.n_source_anomaly}/{r.n_target_anomaly}"]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line):
        # Names left-aligned, numbers right-aligned.
        cells = [c.ljust(w) if i < 2 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return [render(header), *map(render, body)]


# ---------------------------------------------------------------------- confidence interval


def _bootstrap_scores(clips: _Clips, *, key, n_resamples: int, rules: str,
                      max_fpr: float) -> np.ndarray:
    # Resample with replacement within each (machine, section, domain, label) stratum, so
    # every resample keeps the stratum sizes and all AUCs stay defined.
    strata = []
    for key_ms, idx in clips.groups.items():
        for dom in (False, True):
            for label in (0, 1):
                members = idx[(clips.is_target[idx] == dom) & (clips.y[idx] == label)]
                if members.size:
                    strata.append((key_ms, members))
    draws = [
        np.asarray(jax.random.randint(jax.random.fold_in(key, i), (n_resamples, members.size),
                                      0, members.size))
        for i, (_, members) in enumerate(strata)
    ]
    out = np.empty(n_resamples)
    for b in range(n_resamples):
        index = {k: [] for k in clips.groups}
        for (key_ms, members), draw in zip(strata, draws, strict=True):
            index[key_ms].append(members[draw[b]])
        index = {k: np.concatenate(parts) for k, parts in index.items()}
        out[b] = official_score(_table(clips, rules=rules, max_fpr=max_fpr, index=index))
    return out


def _leave_one_out_scores(clips: _Clips, *, rules: str, max_fpr: float) -> np.ndarray:
    # Removing clip i changes only its own section's row: recompute that row alone.
    base = dict(zip(clips.groups, _table(clips, rules=rules, max_fpr=max_fpr), strict=True))
    out = []
    for key, idx in clips.groups.items():
        for i in range(idx.size):
            keep = np.delete(idx, i)
            row = _section_scores(key, clips.y[keep], clips.scores[keep], clips.is_target[keep],
                                  rules=rules, max_fpr=max_fpr)
            out.append(official_score([*(r for k, r in base.items() if k != key), row]))
    return np.array(out)


def _check_jackknife_strata(clips: _Clips, rules: str) -> None:
    # Every group a metric needs must keep >= 1 clip when any single clip is left out.
    for (m, sec), idx in clips.groups.items():
        y, target = clips.y[idx], clips.is_target[idx]
        normal, anomalous = y == 0, y == 1
        needed = {"normal": normal, "anomalous": anomalous}
        if rules != "2020":
            needed |= {"source normal": normal & ~target, "target normal": normal & target}
        if rules == "2021":
            needed |= {"source anomalous": anomalous & ~target,
                       "target anomalous": anomalous & target}
        for name, mask in needed.items():
            if np.count_nonzero(mask) < 2:
                raise ValueError(
                    f"is_anomaly/domain: machine {m!r}, section {sec!r} has fewer than 2 "
                    f"{name} clips, so leaving one out leaves a metric undefined; use "
                    "method='bootstrap'."
                )


def confidence_interval(*, machine, section, domain, is_anomaly, scores,
                        method: str = "bootstrap", n_resamples: int | None = None,
                        key: jax.Array | None = None, level: float = 0.95,
                        max_fpr: float = 0.1, rules: str = "2023") -> ConfidenceInterval:
    """Confidence interval of the official score (arguments as in :func:`dcase_table`).

    ``method="bootstrap"`` (needs ``key``; ``n_resamples`` defaults to 1000): stratified
    bootstrap -- clips are drawn with replacement within each (machine, section, domain,
    label) group -- and the percentile interval of the resampled official scores. Each
    resample re-runs scikit-learn's ROC code for every section (4 times under the 2022-2024
    rules), so the jackknife (n leave-one-out recomputations of one section each) is the
    cheaper choice when n is below n_resamples times the number of sections.

    ``method="jackknife"`` (no key, the n leave-one-out scores): the delete-one jackknife of
    the official score, as in the official DCASE 2022/2023 evaluators after Mesaros et al.,
    "Sound event detection in the DCASE 2017 challenge", TASLP 27(6), 2019, Sec. IV:
    pseudo-values t_i = n S - (n - 1) S_(-i), se = sqrt(sum_i (t_i - mean t)^2 / (n (n - 1))),
    interval S +- t_{(1+level)/2, n-1} se around the full-data score S. Two differences from
    the evaluator's code, both deliberate: it jackknifes the pooled AUC and pAUC of all clips
    rather than the official score, and it applies the se formula to the leave-one-out
    estimates S_(-i) instead of the pseudo-values, which makes its interval n - 1 times
    narrower than Mesaros et al.'s.
    """
    rules = _check_rules(rules)
    max_fpr = _check_max_fpr(max_fpr)
    if isinstance(level, bool) or np.ndim(level) != 0 or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be a probability in (0, 1), e.g. 0.95; got {level!r}.")
    level = float(level)
    clips = _clips(machine, section, domain, is_anomaly, scores, rules)
    estimate = official_score(_table(clips, rules=rules, max_fpr=max_fpr))
    if method == "bootstrap":
        if not isinstance(key, jax.Array):
            raise ValueError(f"key: the bootstrap needs a JAX PRNG key, e.g. "
                             f"jax.random.key(0); got {key!r}.")
        n_resamples = 1000 if n_resamples is None else n_resamples
        if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
                or n_resamples < 2:
            raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}.")
        samples = _bootstrap_scores(clips, key=key, n_resamples=int(n_resamples), rules=rules,
                                    max_fpr=max_fpr)
        low, high = np.quantile(samples, [(1.0 - level) / 2, (1.0 + level) / 2])
    elif method == "jackknife":
        if key is not None or n_resamples is not None:
            raise ValueError("key/n_resamples: the jackknife is deterministic and uses the n "
                             "leave-one-out samples; do not pass key or n_resamples.")
        _check_jackknife_strata(clips, rules)
        loo = _leave_one_out_scores(clips, rules=rules, max_fpr=max_fpr)
        n_resamples = n = loo.size
        pseudo = n * estimate - (n - 1) * loo
        se = np.sqrt(np.sum((pseudo - pseudo.mean()) ** 2) / (n * (n - 1)))
        half = float(stats.t.ppf((1.0 + level) / 2, n - 1) * se)
        low, high = estimate - half, estimate + half
    else:
        raise ValueError(f"method must be 'bootstrap' or 'jackknife', got {method!r}.")
    return ConfidenceInterval(estimate=estimate, low=float(low), high=float(high), level=level,
                              method=method, n_resamples=int(n_resamples), rules=rules)


# ------------------------------------------------------------------------ paired differences


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """``metric(a) - metric(b)`` on the full data (mean over seeds) and its ``level``
    paired-bootstrap interval [low, high]."""

    estimate: float
    low: float
    high: float
    level: float
    n_resamples: int


PAIRED_METRICS = ("auc", "pauc", "hmean", "official")


def _weighted_areas(y: np.ndarray, s: np.ndarray, weights: np.ndarray,
                    max_fpr: float) -> tuple[np.ndarray, np.ndarray]:
    """AUC and McClish pAUC of scores ``s`` under each row of clip multiplicities ``weights``
    (B, n) at once: scikit-learn's ``roc_auc_score`` on the resampled clips, without
    materialising them (ROC points at the distinct scores, trapezoids, the curve cut at
    FPR = max_fpr by linear interpolation)."""
    order = np.argsort(-s, kind="stable")
    y, s, weights = y[order], s[order], weights[:, order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # one ROC point per score
    zero = np.zeros((weights.shape[0], 1))
    tp = np.hstack([zero, np.cumsum(weights * y, axis=1)[:, last]])
    fp = np.hstack([zero, np.cumsum(weights * (1 - y), axis=1)[:, last]])
    tpr, fpr = tp / tp[:, -1:], fp / fp[:, -1:]
    f0, f1, t0, t1 = fpr[:, :-1], fpr[:, 1:], tpr[:, :-1], tpr[:, 1:]
    full = np.sum((f1 - f0) * (t0 + t1) / 2, axis=1)
    right = np.minimum(f1, max_fpr)
    slope = np.divide(t1 - t0, f1 - f0, out=np.zeros_like(t0), where=f1 > f0)
    t_right = t0 + slope * (right - f0)
    partial = np.sum(np.where(f0 < max_fpr, (right - f0) * (t0 + t_right) / 2, 0.0), axis=1)
    low, high = 0.5 * max_fpr**2, max_fpr
    return full, 0.5 * (1 + (partial - low) / (high - low))


def _paired_metric(metric: str, clips: _Clips, scores: np.ndarray, weights: np.ndarray,
                   max_fpr: float) -> np.ndarray:
    """The metric of one detector's scores under each resample (row of ``weights``)."""
    y = clips.y
    if metric == "official":
        values = []
        for idx in clips.groups.values():
            w, yy, ss = weights[:, idx], y[idx], scores[idx]
            for dom in (~clips.is_target[idx], clips.is_target[idx]):
                values.append(_weighted_areas(yy, ss, w * (dom | (yy == 1)), max_fpr)[0])
            values.append(_weighted_areas(yy, ss, w, max_fpr)[1])
        values = np.maximum(np.stack(values), EPS)
        return values.shape[0] / np.sum(1.0 / values, axis=0)
    per_group = [_weighted_areas(y[idx], scores[idx], weights[:, idx], max_fpr)
                 for idx in clips.groups.values()]
    mean_auc = np.mean([a for a, _ in per_group], axis=0)
    mean_pauc = np.mean([p for _, p in per_group], axis=0)
    return {"auc": mean_auc, "pauc": mean_pauc,
            "hmean": harmonic_mean(mean_auc, mean_pauc)}[metric]


def _seed_scores(scores, n: int, name: str) -> np.ndarray:
    arr = np.asarray(scores)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (clips,) or (seeds, clips), got {arr.shape}.")
    return np.stack([_check_scores(row, n, name) for row in arr])


def paired_difference(scores_a, scores_b, *, is_anomaly, key: jax.Array, metric: str = "hmean",
                      groups=None, machine=None, section=None, domain=None,
                      n_resamples: int = 1000, level: float = 0.95,
                      max_fpr: float = 0.1) -> PairedDifference:
    """How much detector a beats detector b on the same clips: ``metric(a) - metric(b)``,
    averaged over seeds, with a paired bootstrap interval over clips and seeds
    (:func:`paired_contrast` with weights +1, -1).

    Args:
      scores_a, scores_b: (clips,) or (seeds, clips) anomaly scores; row s of both comes from
        seed s. Where every seed draws fresh (synthetic) clips, clip i of every seed must have
        the same label and group.
      is_anomaly, key, metric, groups, machine, section, domain, n_resamples, level, max_fpr:
        as in :func:`paired_contrast`.

    Example::

        diff = paired_difference(scores_cnn, scores_ae, is_anomaly=y, key=jax.random.key(0))
        verdict, detectable = claims.from_interval(diff, unit="hmean")
    """
    return paired_contrast([scores_a, scores_b], [1.0, -1.0], is_anomaly=is_anomaly, key=key,
                           metric=metric, groups=groups, machine=machine, section=section,
                           domain=domain, n_resamples=n_resamples, level=level, max_fpr=max_fpr)


def paired_contrast(scores, weights, *, is_anomaly, key: jax.Array, metric: str = "hmean",
                    groups=None, machine=None, section=None, domain=None,
                    n_resamples: int = 1000, level: float = 0.95,
                    max_fpr: float = 0.1) -> PairedDifference:
    """sum_k w_k metric(scores_k), averaged over seeds, with a paired bootstrap interval over
    clips and seeds: a difference of two detectors (weights +1, -1), or a difference of
    differences across conditions on the same clips (e.g. (a - b) at -6 dB minus (a - b)
    clean: weights +1, -1, -1, +1).

    Each resample draws clips with replacement within every (group, domain, label) stratum --
    the same clips for every term, so that what the clips share cancels -- and seeds with
    replacement, and takes the mean over the drawn seeds of the per-seed contrasts; the
    interval is the percentile interval of the resampled contrasts. The metrics are computed
    for all resamples at once from clip multiplicities (:func:`auc`, :func:`pauc` exactly,
    without scikit-learn's per-call cost).

    Args:
      scores: K arrays of (clips,) or (seeds, clips) anomaly scores, all the same shape; row s
        of each comes from seed s. Where every seed draws fresh (synthetic) clips, clip i of
        every seed must have the same label and group.
      weights: K weights of the contrast.
      is_anomaly: (clips,) 0/1 labels.
      key: PRNG key of the resampling.
      metric: "auc", "pauc" or "hmean" as in :func:`group_metrics` (per group, then averaged;
        ``groups`` optional), or "official": the official score of :func:`dcase_table` under
        the 2022-2024 rules (needs ``machine``, ``section`` and ``domain``).
      n_resamples: bootstrap resamples (>= 100).
      level: the interval's coverage.
      max_fpr: the pAUC range.

    Returns:
      :class:`PairedDifference` of the contrast.
    """
    if metric not in PAIRED_METRICS:
        raise ValueError(f"metric must be one of {PAIRED_METRICS}, got {metric!r}.")
    max_fpr = _check_max_fpr(max_fpr)
    if isinstance(level, bool) or np.ndim(level) != 0 or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be a probability in (0, 1), e.g. 0.95; got {level!r}.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}.")
    if not isinstance(key, jax.Array):
        raise ValueError(f"key: the bootstrap needs a JAX PRNG key, e.g. jax.random.key(0); "
                         f"got {key!r}.")
    y = _check_labels(is_anomaly, "is_anomaly")
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 1 or weights.size != len(scores) or not np.all(np.isfinite(weights)):
        raise ValueError(f"weights must be {len(scores)} finite numbers, one per score array; "
                         f"got {weights.tolist()}.")
    terms = [_seed_scores(s, y.size, f"scores[{k}]") for k, s in enumerate(scores)]
    if len({t.shape for t in terms}) != 1:
        raise ValueError("the score arrays must come from the same seeds and clips, got shapes "
                         f"{[t.shape for t in terms]}.")
    dcase_info = (machine, section, domain)
    if metric == "official":
        if any(v is None for v in dcase_info):
            raise ValueError("metric='official' needs machine, section and domain per clip "
                             "(as for dcase_table).")
        clips = _clips(machine, section, domain, y, terms[0][0], "2023")
    else:
        if any(v is not None for v in dcase_info):
            raise ValueError("machine/section/domain are for metric='official'; for "
                             f"metric={metric!r} pass groups.")
        group = np.zeros(y.size, int) if groups is None else np.asarray(groups)
        if group.shape != y.shape:
            raise ValueError(f"groups must hold one group id per clip, shape {y.shape}; got "
                             f"{group.shape}.")
        clip_groups = {}
        for g in np.unique(group):
            idx = np.flatnonzero(group == g)
            _check_both_classes(y[idx], "is_anomaly", f" in group {g}")
            clip_groups[(str(g), "")] = idx
        clips = _Clips(y=y, scores=terms[0][0], is_target=np.zeros(y.size, bool),
                       groups=clip_groups)

    k_clips, k_seeds = jax.random.split(key)
    counts = np.zeros((1 + n_resamples, y.size))
    counts[0] = 1.0  # row 0: the full data, for the estimate
    rows = 1 + np.arange(n_resamples)[:, None]
    stratum = 0
    for idx in clips.groups.values():
        for dom in (False, True):
            for label in (0, 1):
                members = idx[(clips.is_target[idx] == dom) & (y[idx] == label)]
                if members.size:
                    draw = np.asarray(jax.random.randint(jax.random.fold_in(k_clips, stratum),
                                                         (n_resamples, members.size), 0,
                                                         members.size))
                    np.add.at(counts, (rows, members[draw]), 1.0)
                    stratum += 1
    num_seeds = terms[0].shape[0]
    per_seed = sum(w * np.stack([_paired_metric(metric, clips, row, counts, max_fpr)
                                 for row in term])
                   for w, term in zip(weights, terms, strict=True))  # (seeds, 1 + resamples)
    seeds = np.asarray(jax.random.randint(k_seeds, (n_resamples, num_seeds), 0, num_seeds))
    resampled = np.mean(per_seed[seeds, rows], axis=1)
    low, high = np.quantile(resampled, [(1.0 - level) / 2, (1.0 + level) / 2])
    return PairedDifference(estimate=float(per_seed[:, 0].mean()), low=float(low),
                            high=float(high), level=float(level), n_resamples=int(n_resamples))
