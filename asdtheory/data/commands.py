"""``asdtheory data fetch|info``: download DCASE archives, summarise a dataset folder."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from asdtheory.data.dcase import DEV_MACHINES_2023, ClipInfo, data_root, index_folder
from asdtheory.data.download import fetch


def summary(clips: list[ClipInfo]) -> str:
    """A table of clip counts per machine, section, split, domain and label, with the
    attribute keys of each group and their counts."""
    groups: dict[tuple, Counter] = {}
    for c in clips:
        key = (c.machine or "?", f"{c.section:02d}", c.split or "?", c.domain or "-",
               c.label or "unlabelled")
        groups.setdefault(key, Counter())[c.attribute_key] += 1
    header = ("machine", "section", "split", "domain", "label", "clips", "attributes")
    rows = [header]
    for key in sorted(groups):
        attrs = ", ".join(f"{a} ({n})" for a, n in sorted(groups[key].items()))
        rows.append((*key, str(sum(groups[key].values())), attrs))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    per_machine = Counter(c.machine or "?" for c in clips)
    total = ", ".join(f"{m}: {n}" for m, n in sorted(per_machine.items()))
    return "\n".join([*lines, f"total: {len(clips)} clips ({total})"])


def _info(args) -> int:
    path = Path(args.path) if args.path else data_root()
    clips = index_folder(path, skip_unknown=True)
    if not clips:
        print(f"asdtheory data info: no DCASE clips (*.wav) under {path}", file=sys.stderr)
        return 1
    print(f"{path}")
    print(summary(clips))
    others = sum(1 for _ in path.rglob("*.wav")) - len(clips)
    if others:
        print(f"({others} other .wav file(s) without a DCASE clip name not counted)")
    return 0


def _fetch(args) -> int:
    machines = DEV_MACHINES_2023 if "all" in args.machine else tuple(dict.fromkeys(args.machine))
    for machine in machines:
        folder = fetch(machine, year=args.year, root=args.root, base_url=args.base_url,
                       progress=not args.quiet, keep_archive=args.keep_archive)
        print(f"{machine}: {folder}")
    return 0


def _guarded(func):
    # Expected failures (missing folders, network, bad archives) are reported in one line.
    def run(args) -> int:
        try:
            return func(args)
        except (OSError, ValueError) as err:
            print(f"asdtheory data {args.data_command}: error: {err}", file=sys.stderr)
            return 1

    return run


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="download DCASE archives and inspect datasets",
                                   description=__doc__)
    commands = parser.add_subparsers(dest="data_command", metavar="{fetch,info}", required=True)

    f = commands.add_parser(
        "fetch", help="download and unpack DCASE 2023 Task 2 development archives",
        description="Download (resumably, with a size check) and unpack "
        "dev_<machine>.zip into <root>/dcase2023t2/dev_data/raw/<machine>/. The data root is "
        "--root, else $ASDTHEORY_DATA, else the per-user cache directory. The recordings are "
        "CC BY 4.0 (MIMII DG, ToyADMOS2; cite the DCASE 2023 Task 2 description).")
    f.add_argument("--year", type=int, default=2023, choices=[2023])
    f.add_argument("--machine", action="append", required=True,
                   choices=[*DEV_MACHINES_2023, "all"], help="repeatable; 'all' for the seven")
    f.add_argument("--root", type=Path, default=None, help="data root directory")
    f.add_argument("--base-url", default=None,
                   help="folder URL holding dev_<machine>.zip (default: Zenodo record 7882613)")
    f.add_argument("--keep-archive", action="store_true", help="keep the zip after unpacking")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_guarded(_fetch))

    i = commands.add_parser("info", help="count the clips of a DCASE folder",
                            description="Count clips per machine, section, split, domain and "
                            "label, with their attributes, below PATH (any level of the "
                            "layout; default: the data root).")
    i.add_argument("path", nargs="?", default=None, metavar="PATH")
    i.set_defaults(func=_guarded(_info))

