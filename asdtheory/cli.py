"""The ``asdtheory`` command.

Each subcommand lives in the module that does the work and registers itself through a
``register(subparsers)`` function listed in ``SUBCOMMAND_MODULES``; this module only wires
them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from asdtheory import __version__

# Modules that provide ``register(subparsers)``; each adds one subcommand whose parser sets
# ``func(args) -> int``.
SUBCOMMAND_MODULES: list[str] = [
    "asdtheory.verify",
    "asdtheory.pipeline",
    "asdtheory.data.commands",
    "asdtheory.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asdtheory",
        description="Check why angular margin losses work for anomalous sound detection "
        "(Wilkinghoff & Kurth, TASLP 2024).",
    )
    parser.add_argument("--version", action="version", version=f"asdtheory {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
