"""The ``mlpckpt`` command line (``python -m mlpckpt`` is the same program)."""

import argparse
import sys

from . import __version__

__all__ = ["main", "build_parser"]


class CliError(Exception):
    """A bad argument: reported as one line, exit status 2."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mlpckpt",
        description="Exact, memory-efficient MLPs: plan checkpoint schedules, "
        "check gradients, benchmark memory against depth.",
    )
    parser.add_argument("--version", action="version", version=f"mlpckpt {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (CliError, ValueError) as exc:
        print(f"mlpckpt {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
