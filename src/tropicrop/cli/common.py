"""What the commands of the ``tropicrop`` command line share: the handler type, the ``--set`` option and the
rule that a user-facing error reaches the terminal as one line with exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TypeAlias

from tropicrop.errors import TropicropError

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
ERROR_STATUS = 2  # a user-facing error (TropicropError), as argparse's own usage errors
INTERRUPTED_STATUS = 130  # Ctrl-C, as a shell reports SIGINT
BROKEN_PIPE_STATUS = 141  # the reader of our output went away (``| head``), as a shell reports SIGPIPE


def add_set_option(parser: argparse.ArgumentParser, help: str = "override a config value") -> None:
    """``--set KEY=VALUE``, repeatable: the overrides of a YAML config every config-driven command takes."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command's handler; a :class:`~tropicrop.errors.TropicropError` becomes one line on stderr and
    exit status 2, an interrupt one line and 130, a closed output pipe silence and 141, never a traceback."""
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler's guard, not at interpreter exit
        return status
    except TropicropError as exc:
        print(f"tropicrop: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)  # always one line
        return ERROR_STATUS
    except KeyboardInterrupt:
        print("tropicrop: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except BrokenPipeError:  # ``tropicrop inspect X | head``: stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return BROKEN_PIPE_STATUS
