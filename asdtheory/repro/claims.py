"""The claim helper: every check of a notebook ends in one verdict line and one JSON record.

>>> record = claim("C2.c", SUPPORTED, f"max |grad| {fmt(0.0)} for N = 1",
...                statement="With a single class the softmax loss is 0 and its gradient is 0.")
CLAIM C2.c SUPPORTED | max |grad| 0.000 for N = 1

Three verdicts (:data:`VERDICTS`): ``SUPPORTED`` -- the effect the claim predicts is there,
beyond the check's pre-stated uncertainty; ``CONTRADICTED`` -- the opposite is there, beyond
it; ``INCONCLUSIVE`` -- neither, and the line then states the smallest effect the run could
have detected (``detectable=``), because "not supported" from a run that could not tell is a
false statement. A claim can also be ``WITHHELD`` (:data:`OUTCOMES`): no verdict, because a
condition stated before the run for judging it failed (e.g. the explained detector does not
detect the anomaly its map is meant to explain); its line gives the reason.
:func:`from_interval` turns a paired confidence interval of an effect
(:func:`asdtheory.evaluation.paired_difference`) into the verdict and its detectable effect.

The line format is fixed (``CLAIM <id> <verdict> | <summary>``) so that the claims report and
CI can find the verdicts in executed notebooks. When the environment variable
``ASDTHEORY_CLAIMS_DIR`` is set (``asdtheory verify`` sets it), each claim is also written to
``<dir>/<id>.json`` with the fields of :class:`ClaimRecord`; :func:`load_records` reads them
back. :func:`records` lists the claims made in this process. In a Jupyter kernel the line is a
display output that carries the record as :data:`CLAIM_MIME`, so that the stored notebook
keeps every figure and the notebook check compares them by name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["CLAIMS_DIR_ENV", "CLAIM_MIME", "CONTRADICTED", "INCONCLUSIVE", "OUTCOMES",
           "SUPPORTED", "VERDICTS", "WITHHELD", "ClaimRecord", "ClaimResult", "Decision", "Part",
           "all_of", "any_of", "claim", "decide", "fmt", "fmt_e", "fmt_interval", "from_interval",
           "hierarchical_bootstrap", "judge", "load_records", "paired_difference_over_seeds",
           "records", "report", "show_criteria"]

CLAIMS_DIR_ENV = "ASDTHEORY_CLAIMS_DIR"
# In a notebook the verdict line is shown with the record beside it under this MIME type, so
# that the stored notebook keeps every figure and nbval's check can compare them by name.
CLAIM_MIME = "application/vnd.asdtheory.claim+json"
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
# Not a verdict: the claim was not judged because a pre-stated condition for judging it failed.
WITHHELD = "WITHHELD"
OUTCOMES = (*VERDICTS, WITHHELD)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Figures keep this many significant digits: enough for any reported number, few enough that
# the JSON does not change with the last bits of a platform's floating point.
FIGURE_DIGITS = 6

_RECORDS: dict[str, ClaimRecord] = {}


@dataclasses.dataclass(frozen=True)
class ClaimRecord:
    """One claim's outcome: ``verdict`` is one of :data:`OUTCOMES`."""

    id: str
    verdict: str
    statement: str
    summary: str
    figures: dict
    notebook: str | None

    @property
    def line(self) -> str:
        """The printed verdict line."""
        return f"CLAIM {self.id} {self.verdict} | {self.summary}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fmt(x, digits: int = 3) -> str:
    """``x`` rounded to ``digits`` decimals for a summary; never "-0.000".

    >>> fmt(-0.0001), fmt(2 / 3), fmt(np.float32(1.5), 1)
    ('0.000', '0.667', '1.5')
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}.")
    value = _real(x, "x")
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_e(x, digits: int = 1, *, below: float = 0.0) -> str:
    """``x`` in scientific notation with ``digits`` decimals, or ``"< below"`` when ``|x|`` is
    smaller: a value that rounding noise decides (a float32 loss of 7e-15 where the exact value
    is 0) is reported as a bound, not as digits.

    >>> fmt_e(8.3e-16, below=1e-12), fmt_e(-3.1e-6, below=1e-5), fmt_e(0.6931, 2)
    ('< 1e-12', '< 1e-05', '6.93e-01')
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}.")
    value, below = _real(x, "x"), _real(below, "below")
    if not below >= 0:
        raise ValueError(f"below must be >= 0, got {below}.")
    return f"< {below:.0e}" if abs(value) < below else f"{value:.{digits}e}"


def fmt_interval(difference, digits: int = 3) -> str:
    """A paired difference as ``estimate [low, high]``, each rounded by :func:`fmt`.

    >>> from asdtheory.evaluation import PairedDifference
    >>> fmt_interval(PairedDifference(0.0123, -0.0201, 0.0446, 0.95, 1000))
    '0.012 [-0.020, 0.045]'
    """
    return (f"{fmt(difference.estimate, digits)} [{fmt(difference.low, digits)}, "
            f"{fmt(difference.high, digits)}]")


def from_interval(difference, *, unit: str, digits: int = 3,
                  resolution: float = 0.0) -> tuple[str, str | None]:
    """The verdict of "the effect is positive" from a confidence interval of the effect.

    ``SUPPORTED`` when the whole interval lies above ``resolution``, ``CONTRADICTED`` when it
    lies below ``-resolution``, else ``INCONCLUSIVE`` with the detectable effect: the
    interval's half-width plus ``resolution``, the smallest true effect whose interval (of the
    same width) would have cleared the resolution.

    Args:
      difference: an object with ``low`` and ``high`` (e.g. a
        :class:`~asdtheory.evaluation.PairedDifference`), oriented so that the claim
        predicts a positive effect.
      unit: what the effect is measured in, e.g. "official score".
      resolution: the largest move of the interval's ends measured under a change of rounding
        alone (another CPU type, or the same function computed another way). The clip
        bootstrap of a single training run does not contain that move, so an interval that
        clears 0 by less is decided by rounding, not by the data, and another CPU would print
        another verdict.

    Returns:
      (verdict, detectable) for :func:`claim`; detectable is None unless INCONCLUSIVE.

    >>> from asdtheory.evaluation import PairedDifference
    >>> from_interval(PairedDifference(0.01, -0.02, 0.04, 0.95, 1000), unit="AUC")
    ('INCONCLUSIVE', '0.030 AUC')
    >>> from_interval(PairedDifference(-0.05, -0.08, -0.02, 0.95, 1000), unit="AUC")
    ('CONTRADICTED', None)
    >>> from_interval(PairedDifference(0.11, 0.002, 0.22, 0.95, 1000), unit="AUC",
    ...               resolution=0.045)
    ('INCONCLUSIVE', '0.154 AUC')
    """
    low, high = _real(difference.low, "low"), _real(difference.high, "high")
    resolution = _real(resolution, "resolution")
    if not low <= high:
        raise ValueError(f"the interval must have low <= high, got [{low}, {high}].")
    if not resolution >= 0:
        raise ValueError(f"resolution must be a measured move >= 0, got {resolution}.")
    if low > resolution:
        return SUPPORTED, None
    if high < -resolution:
        return CONTRADICTED, None
    detectable = (high - low) / 2 + resolution
    return INCONCLUSIVE, f"{fmt(detectable, digits)} {_check_text(unit, 'unit')}"


def all_of(*parts: tuple[str, str | None]) -> tuple[str, str | None]:
    """The verdict of a conjunction "every part holds" from the parts' (verdict, detectable).

    ``CONTRADICTED`` when any part is contradicted, ``SUPPORTED`` when every part is
    supported, else ``WITHHELD`` when a part was not judged (the whole cannot be), else
    ``INCONCLUSIVE`` with the inconclusive parts' detectable effects.

    >>> all_of((SUPPORTED, None), (INCONCLUSIVE, "0.05 AUC at 0 dB"))
    ('INCONCLUSIVE', '0.05 AUC at 0 dB')
    >>> all_of((SUPPORTED, None), (CONTRADICTED, None), (INCONCLUSIVE, "0.05 AUC"))
    ('CONTRADICTED', None)
    >>> all_of((SUPPORTED, None), (WITHHELD, None))
    ('WITHHELD', None)
    """
    if not parts:
        raise ValueError("all_of needs at least one (verdict, detectable) part.")
    for verdict, detectable in parts:
        if verdict not in OUTCOMES or (verdict == INCONCLUSIVE) != (detectable is not None):
            raise ValueError(f"each part must be (verdict, detectable) as from_interval "
                             f"returns it, got {(verdict, detectable)!r}.")
    verdicts = [v for v, _ in parts]
    if CONTRADICTED in verdicts:
        return CONTRADICTED, None
    if WITHHELD in verdicts:
        return WITHHELD, None
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED, None
    return INCONCLUSIVE, "; ".join(d for v, d in parts if v == INCONCLUSIVE)


def any_of(*parts: tuple[str, str | None]) -> tuple[str, str | None]:
    """The verdict of an existence claim "some part holds" from the parts' (verdict,
    detectable): ``SUPPORTED`` when any part is supported, ``CONTRADICTED`` when every part is
    contradicted, else ``WITHHELD`` when a part was not judged, else ``INCONCLUSIVE`` with the
    inconclusive parts' detectable effects.

    >>> any_of((CONTRADICTED, None), (SUPPORTED, None))
    ('SUPPORTED', None)
    >>> any_of((CONTRADICTED, None), (INCONCLUSIVE, "0.3 decades"))
    ('INCONCLUSIVE', '0.3 decades')
    """
    all_of(*parts)  # validates the parts
    verdicts = [v for v, _ in parts]
    if SUPPORTED in verdicts:
        return SUPPORTED, None
    if all(v == CONTRADICTED for v in verdicts):
        return CONTRADICTED, None
    if WITHHELD in verdicts:
        return WITHHELD, None
    return INCONCLUSIVE, "; ".join(d for v, d in parts if v == INCONCLUSIVE)


@dataclasses.dataclass(frozen=True)
class Decision:
    """A verdict by :func:`decide`: ``verdict``, ``detectable`` (INCONCLUSIVE only, for
    :func:`claim`) and ``reading``, a phrase for the summary line that says what the interval
    means (e.g. "real but small", "reversed", "absent")."""

    verdict: str
    detectable: str | None
    reading: str

    @property
    def part(self) -> tuple[str, str | None]:
        """(verdict, detectable), as :func:`all_of` combines them."""
        return self.verdict, self.detectable


def decide(interval, *, delta: float, unit: str, digits: int = 3) -> Decision:
    """The verdict of "the effect is positive" against a smallest effect of interest ``delta``
    stated before the run (DESIGN, "Decision rules"); no rounding margin.

    - SUPPORTED: the interval lies above 0. When it also lies below ``delta`` the effect is
      real but smaller than the size that matters, and the reading says so.
    - CONTRADICTED: the interval lies below ``delta`` and not above 0: an effect of the
      claimed size is excluded. The reading says "reversed" when the interval lies below 0,
      else "absent" (it holds 0).
    - INCONCLUSIVE: neither (the interval holds both 0 and ``delta``). The detectable effect is
      the interval's width ``high - low``: for any ``delta`` at least that large an interval of
      this width always decides (if its low end is not above 0, its high end is below
      ``delta``), so it is the smallest effect of interest this run could have decided.

    Args:
      interval: an object with ``low`` and ``high`` (a
        :class:`~asdtheory.evaluation.PairedDifference`), oriented so that the claim predicts
        a positive effect.
      delta: the smallest effect of interest, > 0, in ``unit``.
      unit: what the effect is measured in, e.g. "official score".

    >>> from asdtheory.evaluation import PairedDifference
    >>> decide(PairedDifference(0.05, 0.03, 0.07, 0.95, 1000), delta=0.02, unit="AUC")
    Decision(verdict='SUPPORTED', detectable=None, reading='above 0')
    >>> decide(PairedDifference(0.0, -0.01, 0.01, 0.95, 1000), delta=0.02, unit="AUC").reading
    'an effect of 0.020 AUC is excluded; absent (the interval holds 0)'
    >>> decide(PairedDifference(0.0, -0.03, 0.03, 0.95, 1000), delta=0.02, unit="AUC")
    Decision(verdict='INCONCLUSIVE', detectable='0.060 AUC', reading='holds 0 and 0.020 AUC')
    """
    low, high = _real(interval.low, "low"), _real(interval.high, "high")
    delta, unit = _real(delta, "delta"), _check_text(unit, "unit")
    if not low <= high:
        raise ValueError(f"the interval must have low <= high, got [{low}, {high}].")
    if not delta > 0:
        raise ValueError(f"delta, the smallest effect of interest, must be > 0, got {delta}.")
    size = f"{fmt(delta, digits)} {unit}"
    if low > 0:
        return Decision(SUPPORTED, None, "above 0" if high >= delta else
                        f"above 0; real but small: below {size}")
    if high < delta:
        how = "reversed (the interval lies below 0)" if high < 0 else \
            "absent (the interval holds 0)"
        return Decision(CONTRADICTED, None, f"an effect of {size} is excluded; {how}")
    return Decision(INCONCLUSIVE, f"{fmt(high - low, digits)} {unit}", f"holds 0 and {size}")


@dataclasses.dataclass(frozen=True)
class Part:
    """One comparison of a claim: its name, interval (an estimate with ``low`` and ``high``)
    and decision."""

    name: str
    interval: object
    decision: Decision


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict from its parts (:func:`all_of`), for the notebook's CLAIM line; a
    ``WITHHELD`` claim has no parts and says why in ``reason``."""

    id: str
    statement: str
    verdict: str
    detectable: str | None
    parts: tuple[Part, ...]
    delta: float
    unit: str
    reason: str | None = None

    def __post_init__(self):
        if (self.verdict == WITHHELD) != (self.reason is not None) or (
                self.verdict == WITHHELD and self.parts):
            raise ValueError("a WITHHELD claim has a reason and no parts, and only it has a "
                             f"reason; got verdict {self.verdict!r}, reason {self.reason!r}, "
                             f"{len(self.parts)} parts.")

    @property
    def summary(self) -> str:
        if self.verdict == WITHHELD:
            return f"no verdict: {self.reason}"
        return "; ".join(f"{p.name}: {fmt_interval(p.interval)} {self.unit} "
                         f"({p.decision.reading})" for p in self.parts)

    @property
    def figures(self) -> dict:
        """{part name: [estimate, low, high]} and the delta: the numbers a CLAIM record keeps."""
        return {p.name: [p.interval.estimate, p.interval.low, p.interval.high]
                for p in self.parts} | {"delta": self.delta}


def judge(criteria: Mapping, contrast, *, seed: int, unit: str, combine=None
          ) -> list[ClaimResult]:
    """Every claim of pre-registered ``criteria`` ({id: {"statement", "comparisons": {name:
    terms}, "delta", ...}}): each comparison's interval from ``contrast(spec, terms, key)``
    (its key folded from ``seed`` by the claim's and the comparison's position), decided by
    :func:`decide` against the claim's ``delta``, the parts combined by :func:`all_of`, or by
    ``combine(spec, parts)`` when a claim's logic is another (e.g. "some weight decay")."""
    import jax

    results = []
    for i, (claim_id, spec) in enumerate(criteria.items()):
        parts = []
        for j, (name, terms) in enumerate(spec["comparisons"].items()):
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), i), j)
            interval = contrast(spec, terms, key)
            parts.append(Part(name, interval, decide(interval, delta=spec["delta"],
                                                     unit=unit)))
        verdict, detectable = (all_of(*(p.decision.part for p in parts)) if combine is None
                               else combine(spec, parts))
        results.append(ClaimResult(claim_id, spec["statement"], verdict, detectable,
                                   tuple(parts), spec["delta"], unit))
    return results


def hierarchical_bootstrap(values_per_seed, statistic, *, key, n_resamples: int = 1000,
                           level: float = 0.95, strata_per_seed=None,
                           vectorized: bool = False):
    """A statistic averaged over seeds, with a two-level bootstrap interval: each resample
    draws seeds with replacement, then, for every drawn seed, its clips with replacement
    (within strata when given, e.g. labels, so that every resample keeps both classes), and
    averages ``statistic`` over the drawn seeds; the interval is the percentile interval of
    the resampled averages (DESIGN, "Decision rules").

    The clip draw of slot (resample b, drawn seed j) takes, for clip position p of the drawn
    seed, the member ``floor(u[b, j, p] * m)`` of p's stratum (m members), with ``u`` uniform
    from ``key``: all resamples at once, and reproducible from the key.

    Args:
      values_per_seed: one array per seed whose first axis is the clips (seeds may differ in
        clip count), e.g. per-clip columns (label, score a, score b) stacked.
      statistic: maps one seed's (resampled) array to a number, e.g. an AUC difference.
      key: a JAX PRNG key, ``jax.random.key(...)``.
      n_resamples: bootstrap resamples (>= 100).
      level: the interval's coverage.
      strata_per_seed: optional, one array of stratum ids per seed (one per clip).

    Returns:
      :class:`~asdtheory.evaluation.PairedDifference`: the mean of ``statistic`` over the
      seeds, and the interval.
    """
    import jax

    from asdtheory.evaluation import PairedDifference

    values = [np.asarray(v) for v in values_per_seed]
    if not values or any(v.ndim == 0 or v.shape[0] == 0 for v in values):
        raise ValueError("values_per_seed must hold one non-empty array of clips per seed.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}.")
    level = _real(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    strata = [np.zeros(v.shape[0], int) for v in values] if strata_per_seed is None \
        else [np.asarray(s) for s in strata_per_seed]
    if [s.shape for s in strata] != [(v.shape[0],) for v in values]:
        raise ValueError("strata_per_seed must hold one stratum id per clip of every seed.")
    num_seeds, most_clips = len(values), max(v.shape[0] for v in values)
    k_seeds, k_clips = jax.random.split(key)
    seeds = np.asarray(jax.random.randint(k_seeds, (n_resamples, num_seeds), 0, num_seeds))
    uniform = np.asarray(jax.random.uniform(k_clips, (n_resamples, num_seeds, most_clips)),
                         np.float64)
    per_slot = np.empty((n_resamples, num_seeds))
    for seed, (v, stratum) in enumerate(zip(values, strata, strict=True)):
        # Clip position p draws from p's stratum: the members sorted by stratum, p's stratum
        # starting at start[p] with size[p] members.
        order = np.argsort(stratum, kind="stable")
        ids, first, counts = np.unique(stratum[order], return_index=True, return_counts=True)
        where = np.searchsorted(ids, stratum)
        start, size = first[where], counts[where]
        slots = np.argwhere(seeds == seed)
        if slots.size == 0:
            continue
        draws = uniform[slots[:, 0], slots[:, 1], :v.shape[0]]
        idx = order[start + np.minimum((draws * size).astype(int), size - 1)]
        per_slot[slots[:, 0], slots[:, 1]] = (
            np.asarray(statistic(v[idx]), np.float64) if vectorized
            else [float(statistic(v[row])) for row in idx])
    resampled = per_slot.mean(axis=1)
    estimate = float(np.mean([float(statistic(v[None])[0]) if vectorized else
                              float(statistic(v)) for v in values]))
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(estimate=estimate, low=float(low), high=float(high), level=level,
                            n_resamples=int(n_resamples))


def paired_difference_over_seeds(scores_a, scores_b, *, labels, metric, key,
                                 n_resamples: int = 1000, level: float = 0.95):
    """``metric(a) - metric(b)`` of two methods scored on the same clips, per seed, averaged
    over seeds, with the :func:`hierarchical_bootstrap` interval (clips resampled within
    labels, the same clips for both methods so that what the clips share cancels).

    Args:
      scores_a, scores_b: one (clips,) array of anomaly scores per seed; seed s of both on the
        same clips.
      labels: one (clips,) 0/1 array per seed.
      metric: ``metric(labels, scores) -> float``, e.g. :func:`asdtheory.evaluation.auc`;
        called twice per seed and resample, so a fast one pays (a rank-sum AUC takes
        microseconds where scikit-learn's takes milliseconds).

    Example::

        diff = paired_difference_over_seeds(adacos, deep_svdd, labels=labels, metric=auc,
                                            key=jax.random.key(0))
        decision = decide(diff, delta=0.02, unit="AUC")
    """
    if not len(scores_a) == len(scores_b) == len(labels):
        raise ValueError("scores_a, scores_b and labels need one array per seed each, got "
                         f"{len(scores_a)}, {len(scores_b)} and {len(labels)}.")
    values = []
    for a, b, y in zip(scores_a, scores_b, labels, strict=True):
        a, b, y = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(y)
        if not a.shape == b.shape == y.shape or a.ndim != 1:
            raise ValueError(f"each seed needs equal (clips,) shapes, got {a.shape}, "
                             f"{b.shape}, {y.shape}.")
        values.append(np.column_stack([y, a, b]))

    def difference(v):
        return metric(v[:, 0], v[:, 1]) - metric(v[:, 0], v[:, 2])

    return hierarchical_bootstrap(values, difference, key=key, n_resamples=n_resamples,
                                  level=level, strata_per_seed=[v[:, 0] for v in values])


def _real(x, name: str) -> float:
    arr = np.asarray(x)
    if arr.shape != () or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) \
            or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be a real scalar, got {x!r}.")
    return float(arr)


def _json_value(value, where: str):
    """A JSON-ready copy of a figure: NumPy/JAX scalars and arrays to Python, floats rounded
    to FIGURE_DIGITS significant digits; NaN/inf and unknown types are errors."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-string key {key!r}; JSON needs strings.")
        return {k: _json_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    arr = np.asarray(value) if hasattr(value, "__array__") or isinstance(value, (int, float)) \
        else None
    if arr is None or arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{where} has type {type(value).__name__}, which JSON cannot hold; "
                         "use numbers, strings, bools, None, lists or dicts.")
    if arr.ndim:
        return _json_value(arr.tolist(), where)
    if arr.dtype == np.bool_:
        return bool(arr)
    if np.issubdtype(arr.dtype, np.integer):
        return int(arr)
    if np.iscomplexobj(arr):
        raise ValueError(f"{where} is complex; record real and imaginary parts separately.")
    v = float(arr)
    if not math.isfinite(v):
        raise ValueError(f"{where} is {v}, which JSON cannot hold; record None or a string "
                         "such as 'nan' and say why in the summary.")
    return float(f"{v:.{FIGURE_DIGITS}g}")


def _check_text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must be a single line (the verdict line is one line).")
    return value


def claim(claim_id: str, verdict: str, summary: str, *, statement: str,
          detectable: str | None = None, figures: dict | None = None,
          notebook: str | None = None) -> ClaimRecord:
    """Prints ``CLAIM <id> <verdict> | <summary>`` and records the verdict.

    Args:
      claim_id: catalogue id such as "C1.a" (letters, digits, ".", "_", "-").
      verdict: one of :data:`OUTCOMES`, computed by the check (never a target).
      summary: one line with the deciding numbers (use :func:`fmt` for rounding).
      detectable: for ``INCONCLUSIVE`` (required there, refused otherwise), the smallest
        effect the run could have detected, in words with its unit, e.g. "0.081 official
        score"; the line ends with ``; detectable effect <detectable>``.
      statement: the claim being checked, in words (one line).
      figures: named numbers behind the verdict; NumPy/JAX values are converted and floats
        rounded to 6 significant digits.
      notebook: the notebook that made the check, e.g. "01_compactness".

    Returns:
      the :class:`ClaimRecord`, also kept in :func:`records` (a repeated id replaces the
      earlier record) and written to ``$ASDTHEORY_CLAIMS_DIR/<id>.json`` when that is set.
    """
    if not isinstance(claim_id, str) or not _ID.fullmatch(claim_id):
        raise ValueError(f"claim_id must look like 'C1.a' (letters, digits, '.', '_', '-', "
                         f"no spaces), got {claim_id!r}.")
    if verdict not in OUTCOMES:
        raise ValueError(f"verdict must be one of {OUTCOMES}, got {verdict!r}.")
    if (verdict == INCONCLUSIVE) != (detectable is not None):
        raise ValueError("detectable: an INCONCLUSIVE verdict must state the smallest effect "
                         "the run could have detected (detectable='0.08 AUC'), and only it; "
                         f"got verdict {verdict!r} with detectable={detectable!r}.")
    summary = _check_text(summary, "summary")
    if detectable is not None:
        summary += f"; detectable effect {_check_text(detectable, 'detectable')}"
    if figures is not None and not isinstance(figures, dict):
        raise ValueError(f"figures must be a dict of named numbers, got {type(figures).__name__}.")
    if notebook is not None:
        _check_text(notebook, "notebook")
    record = ClaimRecord(
        id=claim_id,
        verdict=verdict,
        statement=_check_text(statement, "statement"),
        summary=summary,
        figures=_json_value(figures or {}, "figures"),
        notebook=notebook,
    )
    _show(record)
    _RECORDS[claim_id] = record
    directory = os.environ.get(CLAIMS_DIR_ENV)
    if directory:
        _write(record, Path(directory))
    return record


def show_criteria(criteria: Mapping, *, unit: str | None = None) -> None:
    """Prints pre-registered ``criteria`` ({id: {"statement", "comparisons", "criterion",
    "delta" or "deltas" ({measure: delta}), "delta_reason", "unit"?}}) as a notebook states
    them before its verdicts: per
    claim its statement, comparisons, criterion and smallest effect of interest with the
    reason; a reason shared by every claim is printed once, after them. ``unit`` stands where
    a claim has none of its own."""
    reasons = {spec["delta_reason"] for spec in criteria.values()}
    shared = len(criteria) > 1 and len(reasons) == 1
    for claim_id, spec in criteria.items():
        size = (f"{fmt(spec['delta'])} {spec.get('unit', unit)}" if "delta" in spec else
                ", ".join(f"{fmt(d)} {measure}" for measure, d in spec["deltas"].items()))
        print(f"{claim_id}: {spec['statement']}\n  comparisons: "
              f"{', '.join(spec['comparisons'])}\n  criterion: {spec['criterion']}\n  "
              f"smallest effect of interest: {size}"
              + ("" if shared else f", because {spec['delta_reason']}.\n"))
    if shared:
        print(f"\nwhy {size}: {reasons.pop()}.")


def report(result: ClaimResult, *, notebook: str, verdict: tuple[str, str | None] | None = None
           ) -> ClaimRecord:
    """A judged claim in a notebook: its statement on a line of its own, then its CLAIM line
    (:func:`claim`) with every part's interval and the claim's delta as figures.

    Args:
      result: from :func:`judge` (or an experiment's ``analyse``).
      notebook: the notebook that made the check.
      verdict: (verdict, detectable) in place of the result's own, when a gate applied after
        judging (e.g. unsettled training) caps it.
    """
    verdict, detectable = verdict or (result.verdict, result.detectable)
    print(f"\n{result.id}: {result.statement}")
    return claim(result.id, verdict, result.summary, statement=result.statement,
                 detectable=detectable, notebook=notebook, figures=result.figures)


def report_together(claim_id: str, results: Sequence[ClaimResult], *, statement: str,
                    notebook: str) -> ClaimRecord:
    """A claim judged as several results (e.g. one per measure, each against its own delta):
    the statement, each result's verdict and intervals, then one CLAIM line whose verdict is
    their :func:`all_of` and whose figures keep every result's (by result id)."""
    print(f"\n{claim_id}: {statement}")
    for result in results:
        print(f"  {result.id}: {result.verdict}")
    verdict, detectable = all_of(*((r.verdict, r.detectable) for r in results))
    return claim(claim_id, verdict, "; ".join(f"{r.id} {r.verdict}: {r.summary}"
                                              for r in results),
                 statement=statement, detectable=detectable, notebook=notebook,
                 figures={r.id: r.figures for r in results})


def _show(record: ClaimRecord) -> None:
    """The verdict line; in a Jupyter kernel a display output that also carries the record."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None or not hasattr(shell, "kernel"):
        print(record.line)
        return
    import sys

    from IPython.display import display

    sys.stdout.flush()  # the line belongs after what the cell printed before it
    display({"text/plain": record.line, CLAIM_MIME: record.to_dict()}, raw=True)


def _write(record: ClaimRecord, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record.id}.json"
    tmp = path.with_suffix(".json.tmp")
    # Write-then-rename so that a reader never sees a half-written record.
    tmp.write_text(json.dumps(record.to_dict(), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def records() -> list[ClaimRecord]:
    """The claims made in this process, in the order they were first made."""
    return list(_RECORDS.values())


def load_records(directory) -> list[ClaimRecord]:
    """Reads every ``<id>.json`` in ``directory`` (sorted by id) back into ClaimRecords."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"claims directory {directory} does not exist; run "
                                "`asdtheory verify` (or set ASDTHEORY_CLAIMS_DIR) first.")
    fields = [f.name for f in dataclasses.fields(ClaimRecord)]
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(data, dict) or sorted(data) != sorted(fields):
            raise ValueError(f"{path} is not a claim record: expected the keys {fields}.")
        if data["verdict"] not in OUTCOMES or data["id"] != path.stem:
            raise ValueError(f"{path} has verdict {data['verdict']!r} and id {data['id']!r}; "
                             f"expected one of {list(OUTCOMES)} and {path.stem!r}.")
        out.append(ClaimRecord(**data))
    return out
