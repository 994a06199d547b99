"""The ``cnnlab`` command: parses arguments, calls the library, prints. No logic lives here.

Each command is one ``_add_<command>`` function that declares its arguments and points
``handler`` at a ``_run_<command>`` function; ``COMMANDS`` lists them in the order ``--help``
shows them. A ``CnnlabError`` is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from cnnlab import __version__
from cnnlab.errors import CnnlabError

console = Console()
err_console = Console(stderr=True)


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (and exit status 2), like CnnlabError."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models with parameters and MACs",
        description="List the registered models, grouped by family: parameters, MACs at the "
        "default input size, input size and paper.",
    )
    p.add_argument("pattern", nargs="?", help="shell wildcard, e.g. 'resnet*'")
    p.set_defaults(handler=_run_models)


def _run_models(args) -> None:
    from cnnlab.sizing.zoo_table import models_table

    console.print(models_table(args.pattern))


COMMANDS = [
    _add_models,
]


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="cnnlab",
        description="Build, size, train, compare and understand classic convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrorParser)
    sub.required = True
    for add_command in COMMANDS:
        add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CnnlabError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
