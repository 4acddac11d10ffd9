"""The ``tropicrop`` command line: thin subcommands over the library modules.

One module per group of commands builds their subparsers and holds their handlers (:mod:`.data`,
:mod:`.train`, :mod:`.experiment`, :mod:`.predict`, :mod:`.adapt`, :mod:`.evaluate`); this one assembles the
parser and runs a command. Every user-facing error (:class:`~tropicrop.errors.TropicropError`) is printed as
one line naming the file and the fix, with exit status 2; no traceback reaches a user
(:func:`~tropicrop.cli.common.run_handler`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from tropicrop import __version__
from tropicrop.allocator import keep_freed_memory
from tropicrop.cli import adapt, data, evaluate, experiment, predict, train
from tropicrop.cli.common import Handler, SubParsers, run_handler
from tropicrop.logsetup import configure_logging

__all__ = ["build_parser", "main"]

# the subcommands in the order ``tropicrop --help`` lists them
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    data.add_inspect, data.add_import_authors, data.add_stack, data.add_synth,
    train.add_train, experiment.add_experiment, experiment.add_demo, train.add_models,
    predict.add_predict, adapt.add_adapt, adapt.add_check, evaluate.add_evaluate, predict.add_view,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tropicrop",
        description="Month-by-month crop maps from Sentinel-1 time series (UnetConvLSTM, VUnetConvLSTM).",
    )
    parser.add_argument("--version", action="version", version=f"tropicrop {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug, with GDAL's messages)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tropicrop`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    keep_freed_memory()  # about 10 % off a CPU training step (tropicrop.allocator)
    handler: Handler = args.func
    return run_handler(handler, args)

