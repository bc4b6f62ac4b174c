"""Checks a re-executed notebook against its stored outputs at the precision the run supports.

nbval re-executes every stored notebook; this pytest plugin (``-p asdtheory.repro.notebook_check``,
set in ``pyproject.toml``) replaces nbval's exact comparison of a cell's outputs:

* **Same rounding, exact comparison.** When this machine's CPU type, the number of CPUs a
  kernel runs on (XLA splits its matmuls and convolutions by it; one, where
  ``notebook_run.pin_to_one_cpu`` can pin it) and the XLA flags that change rounding
  (``--xla_cpu_max_isa``) are those recorded in the notebook's metadata, every output must
  reproduce exactly (what catches a lost PRNG key).
* **Another rounding, declared tolerances.** Otherwise a cell's text is split into numbers and
  the text between them. The text (verdict words, labels, table layout up to the width of
  blank runs) must be equal; integers (counts) must be equal; decimals must agree within the
  cell's declared tolerance. A cell declares one with a comment that gives its reason::

      # tolerance: abs=0.03 rel=0 counts=0; AUCs moved by up to 0.012 under SSE4_2 (x2.5)

  A cell without such a comment is compared exactly on every CPU: hand-built constructions,
  data counts and bound-violation counts are exact by construction.
* **Claim records.** :func:`asdtheory.repro.claims.claim` shows its record as a
  :data:`~asdtheory.repro.claims.CLAIM_MIME` output; the verdict is compared exactly and
  every figure by name, so a failure names the notebook, the claim and the figure.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from functools import cache
from pathlib import Path

from asdtheory.repro.claims import CLAIM_MIME

__all__ = ["EXACT", "Tolerance", "cell_tolerance", "compare_claim", "compare_outputs",
           "compare_text", "rounding_of_notebook", "split_numbers"]

# A number stands alone: not part of a name such as "C1.a", "f0" or "640x480".
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_MARKER = re.compile(r"^\s*#\s*tolerance:(.*)$", re.MULTILINE)
_KEYS = {"abs": float, "rel": float, "counts": int}
# On another rounding a claim's decimal figures agree to at least this relative precision.
# They are recorded at 6 significant digits (claims.FIGURE_DIGITS) where the notebooks print 3
# or 4, and the stored outputs of the AVX-512 machine kept no records: the digits beyond the
# printed ones were never measured under a change of rounding, only the printed ones.
FIGURE_REL_FLOOR = 1e-4


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far a re-executed number may be from the stored one on another rounding.

    A decimal passes when ``|new - stored| <= abs + rel * |stored|``, an integer when
    ``|new - stored| <= counts``. ``reason`` says where the numbers come from.
    """

    abs: float = 0.0
    rel: float = 0.0
    counts: int = 0
    reason: str = "exact"

    def allows(self, stored: float, new: float, *, integer: bool) -> bool:
        if integer:
            return abs(new - stored) <= self.counts
        # The factor absorbs the binary error of the subtraction at the boundary.
        return abs(new - stored) <= (self.abs + self.rel * abs(stored)) * (1 + 1e-9)

    def describe(self) -> str:
        if self == EXACT:
            return "exact"
        parts = [f"{key} {getattr(self, key)}" for key in _KEYS if getattr(self, key)]
        return f"tolerance {', '.join(parts) or 'none'} ({self.reason})"


EXACT = Tolerance()


def cell_tolerance(source: str) -> Tolerance:
    """The tolerance a cell's ``# tolerance: key=value ...; reason`` comment declares
    (:data:`EXACT` without one).

    >>> cell_tolerance("# tolerance: abs=0.02 counts=1; measured 0.008 under SSE4_2\\nf()")
    Tolerance(abs=0.02, rel=0.0, counts=1, reason='measured 0.008 under SSE4_2')
    """
    markers = _MARKER.findall(source)
    if not markers:
        return EXACT
    if len(markers) > 1:
        raise ValueError(f"a cell may declare one tolerance, found {len(markers)}: {markers}")
    settings, _, reason = markers[0].partition(";")
    values = {}
    for item in settings.split():
        key, _, value = item.partition("=")
        if key not in _KEYS or not value:
            raise ValueError(f"tolerance item {item!r}: expected {', '.join(_KEYS)} as key=value "
                             "(e.g. '# tolerance: abs=0.02; measured spread ...').")
        try:
            values[key] = _KEYS[key](value)
        except ValueError:
            raise ValueError(f"tolerance {key}={value!r} is not a {_KEYS[key].__name__}.") from None
        if values[key] < 0 or not math.isfinite(values[key]):
            raise ValueError(f"tolerance {key} must be finite and >= 0, got {value}.")
    if not reason.strip():
        raise ValueError(f"tolerance {markers[0].strip()!r} gives no reason: write after ';' "
                         "where it comes from (measured move under another rounding, seed "
                         "spread).")
    return Tolerance(**values, reason=reason.strip())


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """``text`` as the pieces between its numbers (blank runs collapsed, line ends trimmed) and
    the numbers; ``len(pieces) == len(numbers) + 1``.

    >>> split_numbers("C1.a: 3 of 10,  AUC 0.476 (f0 -1e-3)")
    (['C1.a: ', ' of ', ', AUC ', ' (f0 ', ')'], ['3', '10', '0.476', '-1e-3'])
    """
    text = re.sub(r"[ \t]+", " ", "\n".join(line.rstrip() for line in text.splitlines()))
    return _NUMBER.split(text), _NUMBER.findall(text)


def _is_integer(token: str) -> bool:
    return not any(c in token for c in ".eE")


def compare_text(stored: str, new: str, tolerance: Tolerance) -> list[str]:
    """What differs between a stored and a re-executed text output (empty: they agree)."""
    stored_pieces, stored_numbers = split_numbers(stored)
    new_pieces, new_numbers = split_numbers(new)
    if stored_pieces != new_pieces:
        for line_stored, line_new in itertools.zip_longest(stored.splitlines(),
                                                           new.splitlines(), fillvalue=""):
            if split_numbers(line_stored)[0] != split_numbers(line_new)[0]:
                return [f"text differs beyond its numbers:\n  stored: {line_stored}\n"
                        f"  now:    {line_new}"]
        return ["text differs beyond its numbers"]
    problems = []
    for index, (a, b) in enumerate(zip(stored_numbers, new_numbers, strict=True)):
        integer = _is_integer(a) and _is_integer(b)
        if not tolerance.allows(float(a), float(b), integer=integer):
            line = _line_of(stored, index)
            kind = "count" if integer else "number"
            problems.append(f"{kind} {a} -> {b} beyond {tolerance.describe()} in: {line}")
    return problems


def _line_of(text: str, number_index: int) -> str:
    """The stored line that holds the ``number_index``-th number of ``text``."""
    seen = 0
    for line in text.splitlines():
        count = len(split_numbers(line)[1])
        if seen + count > number_index:
            return line.strip()
        seen += count
    return ""


def _flat(figures, prefix: str = "") -> dict:
    if isinstance(figures, dict):
        out = {}
        for key, value in figures.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(figures, list):
        out = {}
        for index, value in enumerate(figures):
            out.update(_flat(value, f"{prefix}[{index}]"))
        return out
    return {prefix: figures}


def compare_claim(stored: dict, new: dict, tolerance: Tolerance, *, notebook: str,
                  figure_rel_floor: float = 0.0) -> list[str]:
    """What differs between a stored and a re-executed claim record, each problem naming the
    notebook, the claim and the figure. Decimal figures pass at ``tolerance`` or at the
    relative ``figure_rel_floor``, whichever allows more; integers at ``tolerance.counts``."""
    where = f"{notebook}, claim {stored.get('id')}"
    problems = [f"{where}: {key} {stored.get(key)!r} -> {new.get(key)!r}"
                for key in ("id", "verdict", "statement", "notebook")
                if stored.get(key) != new.get(key)]
    before, after = _flat(stored.get("figures", {})), _flat(new.get("figures", {}))
    if sorted(before) != sorted(after):
        problems.append(f"{where}: figures {sorted(before)} -> {sorted(after)}")
        return problems
    for name, a in before.items():
        b = after[name]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if not numeric:
            if a != b:
                problems.append(f"{where}, figure {name}: {a!r} -> {b!r}")
            continue
        integer = isinstance(a, int) and isinstance(b, int)
        floor = dataclasses.replace(tolerance, abs=0.0, rel=figure_rel_floor)
        if not (tolerance.allows(float(a), float(b), integer=integer)
                or (not integer and floor.allows(float(a), float(b), integer=False))):
            problems.append(f"{where}, figure {name}: {a} -> {b} beyond {tolerance.describe()}")
    return problems


def compare_outputs(stored: list[dict], new: list[dict], tolerance: Tolerance, *,
                    notebook: str, figure_rel_floor: float = 0.0) -> list[str]:
    """Compares two cells' outputs (nbval's dicts: stream text under the stream's name, display
    data by MIME type); an empty list means they agree. ``figure_rel_floor``: see
    :func:`compare_claim`."""
    stored_by_key, new_by_key = _by_key(stored), _by_key(new)
    if sorted(stored_by_key) != sorted(new_by_key):
        return [f"{notebook}: output kinds {sorted(stored_by_key)} -> {sorted(new_by_key)}"]
    problems = []
    for key, stored_values in stored_by_key.items():
        new_values = new_by_key[key]
        if len(stored_values) != len(new_values):
            problems.append(f"{notebook}: {len(stored_values)} '{key}' outputs -> "
                            f"{len(new_values)}")
            continue
        for a, b in zip(stored_values, new_values, strict=True):
            if key == CLAIM_MIME:
                problems += compare_claim(a, b, tolerance, notebook=notebook,
                                          figure_rel_floor=figure_rel_floor)
            elif isinstance(a, str) and isinstance(b, str):
                problems += [f"{notebook}: {p}" for p in compare_text(a, b, tolerance)]
            elif a != b:
                problems.append(f"{notebook}: '{key}' output differs")
    return problems


_NOT_COMPARED = {"metadata", "traceback", "prompt_number", "output_type", "name",
                 "execution_count", "image/png", "image/jpeg",
                 "application/vnd.jupyter.widget-view+json"}


def _by_key(outputs: list[dict]) -> dict[str, list]:
    flat: dict[str, list] = {}
    for output in outputs:
        for key, value in output.items():
            if key in _NOT_COMPARED:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for data_key, data_value in items:
                if data_key not in _NOT_COMPARED:
                    flat.setdefault(data_key, []).append(data_value)
    return flat


_ISA_FLAG = re.compile(r"--xla_cpu_max_isa=(\S+)")


# Notebooks executed before 2026-12-05 did not record the CPU count; every one of them ran on
# this project's 2-core machines.
CPUS_BEFORE_RECORDED = 2


def rounding(cpu: str, xla_flags: str, cpus: int) -> str:
    """What decides how XLA rounds: the CPU type, the number of CPUs the kernel ran on (the
    size of XLA's intra-op pool) and any ``--xla_cpu_max_isa`` cap.

    >>> rounding("Xeon (GenuineIntel family 6 model 207, AVX-512)", "", 2)
    'Xeon (GenuineIntel family 6 model 207, AVX-512), 2 CPUs'
    """
    isa = _ISA_FLAG.search(xla_flags or "")
    where = f"{cpu}, {cpus} CPU{'s' if cpus != 1 else ''}"
    return f"{where}; XLA max ISA {isa.group(1)}" if isa else where


@cache
def rounding_of_notebook(path: str) -> str:
    """The :func:`rounding` recorded in an executed notebook's metadata."""
    import nbformat

    meta = nbformat.read(Path(path), as_version=4).metadata.get("asdtheory", {})
    return rounding(meta.get("cpu", "unknown CPU"), meta.get("xla_flags", ""),
                    meta.get("cpus", CPUS_BEFORE_RECORDED))


def this_rounding() -> str:
    import os

    from asdtheory.repro.notebook_run import cpu_signature, kernel_cpus

    return rounding(cpu_signature(), os.environ.get("XLA_FLAGS", ""), kernel_cpus())


# --- the pytest plugin ------------------------------------------------------------------------

def _compare_cell(self, test, ref, skip_compare=None):
    """Replaces ``nbval.plugin.IPyNbCell.compare_outputs``: exact when the rounding is the
    stored one, else at the cell's declared tolerance."""
    from nbval.plugin import transform_streams_for_comparison

    notebook = Path(str(self.parent.path)).stem
    strict = rounding_of_notebook(str(self.parent.path)) == this_rounding()
    if strict and _NBVAL_COMPARE(self, test, ref, skip_compare):
        return True
    nbval_report = list(getattr(self, "comparison_traceback", [])) if strict else []
    tolerance = EXACT if strict else cell_tolerance(self.cell.source)
    stored = [_sanitized(o, self.sanitize) for o in transform_streams_for_comparison(ref)]
    now = [_sanitized(o, self.sanitize) for o in transform_streams_for_comparison(test)]
    problems = compare_outputs(stored, now, tolerance, notebook=notebook,
                               figure_rel_floor=0.0 if strict else FIGURE_REL_FLOOR)
    stored_on = rounding_of_notebook(str(self.parent.path))
    how = ("exactly (same CPU type, CPU count and XLA flags as the stored run)" if strict
           else f"exactly (the cell declares no tolerance; stored on {stored_on})"
           if tolerance == EXACT else f"at {tolerance.describe()} (stored on {stored_on})")
    self.comparison_traceback = [f"{notebook} cell {self.cell_num}, compared {how}:",
                                 *problems, *nbval_report]
    return not problems and not strict


def _sanitized(output: dict, sanitize) -> dict:
    """``output`` with nbval's sanitisers applied to what is compared. Images are left out
    before sanitising, as nbval does: the sanitisers' regexes take quadratic time on a long
    base64 string."""
    out = {}
    for key, value in output.items():
        if key in _NOT_COMPARED:
            continue
        if key == "data":
            out[key] = {k: sanitize(v) for k, v in value.items() if k not in _NOT_COMPARED}
        else:
            out[key] = sanitize(value) if isinstance(value, str) else value
    return out


_NBVAL_COMPARE = None


def pytest_configure(config):
    global _NBVAL_COMPARE
    from nbval.plugin import IPyNbCell

    if IPyNbCell.compare_outputs is not _compare_cell:
        _NBVAL_COMPARE = IPyNbCell.compare_outputs
        IPyNbCell.compare_outputs = _compare_cell


def pytest_report_header(config):
    here = this_rounding()
    notebooks = sorted(Path(str(config.rootpath), "notebooks").glob("[0-9][0-9]_*.ipynb"))
    stored = sorted({rounding_of_notebook(str(p)) for p in notebooks})
    if not stored:
        return None
    how = ("exactly" if stored == [here] else
           "at the tolerances their cells declare (another CPU type or count, or an XLA ISA "
           "cap)")
    return (f"stored notebook outputs made on: {'; '.join(stored)}; this machine: {here}; "
            f"outputs compared {how}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    failed = [r for r in terminalreporter.stats.get("failed", []) if ".ipynb::" in r.nodeid]
    if not failed:
        return
    terminalreporter.section("notebook outputs")
    terminalreporter.write_line(
        "Cells compared exactly (same CPU type, CPU count and XLA flags as the stored run) "
        "fail when the code, a library version or a lost PRNG key changed the numbers; cells "
        "compared at their declared tolerance fail when a verdict, a text or a count changed "
        "or a number moved beyond the tolerance. Changed code: re-execute the notebook "
        "(python -m asdtheory.repro.notebook_run notebooks/NN_name.py). A move on another CPU "
        "type: measure it (python -m asdtheory.repro.notebook_check STORED.ipynb RERUN.ipynb) "
        "and read notebooks/README.md before touching a tolerance.")

# --- measuring how far outputs move ---------------------------------------------------------

@dataclasses.dataclass
class CellMove:
    """How far one code cell's numbers moved between executions of the same notebook: the
    largest absolute move of numbers within [-1, 1] (AUCs, cosines, margins), the largest
    relative move of larger ones (angles in degrees, losses, scales) and of integers."""

    cell: int
    abs: float = 0.0
    rel: float = 0.0
    counts: int = 0
    text: list[str] = dataclasses.field(default_factory=list)

    def add(self, stored: float, new: float, *, integer: bool) -> None:
        if integer:
            self.counts = max(self.counts, int(abs(new - stored)))
        elif abs(stored) <= 1:
            self.abs = max(self.abs, abs(new - stored))
        else:
            self.rel = max(self.rel, abs(new - stored) / abs(stored))

    def suggested(self) -> Tolerance:
        """Twice the measured move, rounded up to one significant digit: a few executions
        sample the moves a change of rounding makes, they do not bound them."""
        if not (self.abs or self.rel or self.counts):
            return EXACT
        return Tolerance(abs=_round_up(2 * self.abs), rel=_round_up(2 * self.rel),
                         counts=2 * self.counts, reason="2x measured")

    def __str__(self) -> str:
        moved = f"abs {self.abs:.2g}, rel {self.rel:.2g}, counts {self.counts}"
        return f"cell {self.cell}: {moved}" + "".join(f"\n    {t}" for t in self.text)


def _round_up(x: float) -> float:
    if x <= 0:
        return 0.0
    step = 10.0 ** math.floor(math.log10(x))
    return float(f"{math.ceil(x / step - 1e-9) * step:.1g}")


def _numbers_of(outputs: list[dict]) -> tuple[list[str], list[tuple[float, bool]], list]:
    """A cell's printed text split into pieces and numbers (value, is_integer), in output
    order, and the figures of the claim records it shows."""
    texts, figures = [], []
    for output in outputs:
        data = output.get("data", {})
        if CLAIM_MIME in data:
            figures += [v for v in _flat(data[CLAIM_MIME].get("figures", {})).values()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)]
        text = output.get("text", data.get("text/plain", ""))
        texts.append(text if isinstance(text, str) else "".join(text))
    pieces, found = split_numbers("\n".join(t.rstrip("\n") for t in texts))
    return pieces, [(float(t), _is_integer(t)) for t in found], figures


def cell_moves(reference, others) -> list[CellMove]:
    """Per code cell, the largest move of its numbers from ``reference`` (an executed
    notebook) to any of ``others`` (the same notebook executed elsewhere, e.g. with
    ``--xla_cpu_max_isa=SSE4_2``): of the printed numbers, and of the claim figures where
    both show records. Texts that differ beyond their numbers (a changed verdict) are
    listed. Cells are numbered as nbval numbers them (code cells from 0)."""
    notebooks = [_code_cells(p) for p in (reference, *others)]
    moves = []
    if len({len(cells) for cells in notebooks}) > 1:
        raise ValueError(f"the notebooks hold different numbers of code cells: "
                         f"{[len(cells) for cells in notebooks]}; compare executions of one "
                         "source.")
    for index, cells in enumerate(zip(*notebooks, strict=True)):
        move = CellMove(index)
        base_pieces, base, base_figures = _numbers_of(cells[0].outputs)
        for cell in cells[1:]:
            pieces, numbers, figures = _numbers_of(cell.outputs)
            if pieces != base_pieces:
                move.text.append(f"differs beyond its numbers: "
                                 f"{_brief(cells[0].outputs)} | {_brief(cell.outputs)}")
                continue
            pairs = list(zip(base, numbers, strict=True))
            if base_figures and len(figures) == len(base_figures):
                pairs += [((float(a), isinstance(a, int)), (float(b), isinstance(b, int)))
                          for a, b in zip(base_figures, figures, strict=True)]
            for (a, integer), (b, _) in pairs:
                move.add(a, b, integer=integer)
        moves.append(move)
    return moves


def _code_cells(path) -> list:
    """The code cells of an executed notebook, each cell's stream outputs merged as nbval
    merges them (how a print is cut into chunks depends on when the kernel flushed)."""
    import nbformat
    from nbval.plugin import coalesce_streams

    cells = [c for c in nbformat.read(Path(path), as_version=4).cells if c.cell_type == "code"]
    for cell in cells:
        cell.outputs = coalesce_streams(cell.outputs)
    return cells


def _brief(outputs) -> str:
    texts = [v for vs in _by_key(outputs).values() for v in vs if isinstance(v, str)]
    return " / ".join(t.strip().replace("\n", " / ")[:300] for t in texts)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m asdtheory.repro.notebook_check",
        description="How far each code cell's numbers move between executions of one "
        "notebook (e.g. the stored one and one run with XLA_FLAGS=--xla_cpu_max_isa=SSE4_2); "
        "what the '# tolerance:' comments of the cells are set from.")
    parser.add_argument("reference", type=Path, help="executed notebook (e.g. the stored one)")
    parser.add_argument("others", type=Path, nargs="+", help="the same notebook run elsewhere")
    args = parser.parse_args(argv)
    sources = [c.source for c in _code_cells(args.reference)]
    for move in cell_moves(args.reference, args.others):
        declared = cell_tolerance(sources[move.cell])
        print(f"{move}\n    declared: {declared.describe()}; 2x measured: "
              f"{move.suggested().describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
