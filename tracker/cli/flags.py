"""The flags commands share: each setting's flag (the settings' table is
``tracker.settings.options``), ``--json``/``--jsonl`` (or ``--json``/``--csv``), the options
every command takes, and argparse's way of saying a usage error."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from tracker.settings import OPTIONS
from tracker.settings.commands import EVERY_COMMAND, REGISTER
from tracker.settings.options import TOKEN_FILE_VARIABLE


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Spelled(argparse.Action):
    """Stores a setting's text and the flag it was given with (``--host`` or ``--http-host``),
    in ``spelled``: messages about the value name the flag the user wrote."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        if option_string is not None:
            namespace.spelled = {**getattr(namespace, "spelled", {}), self.dest: option_string}


def settings_flags(
    parser: argparse.ArgumentParser,
    fields: Sequence[str],
    title: str,
    aliases: dict[str, tuple[str, ...]] | None = None,
    meanings: dict[str, tuple[str, str]] | None = None,
) -> None:
    """The flags of the settings ``fields`` that have one (secrets have none); ``meanings``
    gives a setting's help and default for this command, where it differs."""
    aliases = aliases or {}
    meanings = meanings or {}
    group = parser.add_argument_group(title)
    for field in fields:
        option = OPTIONS.get(field)
        if option is not None and field not in EVERY_COMMAND:
            flags = [option.flag, *aliases.get(field, ())]
            described = option.describe(*meanings.get(field, (None, None)))
            if option.switch:
                group.add_argument(
                    *flags, dest=field, action="store_const", const="1", help=described
                )
            else:
                group.add_argument(
                    *flags, dest=field, metavar="VALUE", action=Spelled, help=described
                )
    if "token" in fields:
        group.add_argument(
            "--token-file",
            metavar="PATH",
            help=f"read the API token from this file (env: {TOKEN_FILE_VARIABLE}); the token "
            "itself comes from TRACKER_API_TOKEN and is never a flag",
        )


def register_flags(parser: argparse.ArgumentParser, tasks: str) -> None:
    """``--config`` of a command that registers ``tasks`` ("tasks registered over HTTP"), for
    the names of the providers they may be registered under."""
    settings_flags(
        parser,
        REGISTER,
        f"the providers {tasks} may name",
        meanings={
            "config": (
                f"the daemons' providers file (docs/providers.md): {tasks} must name one of its "
                "providers; their tokens are not read",
                "none: any provider name is taken",
            )
        },
    )


def count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of 1 or more")
    return value


def json_flags(parser: argparse.ArgumentParser, table: str) -> None:
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help=f"a JSON array of {table} rows, written as read"
    )
    output.add_argument("--jsonl", action="store_true", help=f"{table} rows as JSON lines")


def json_or_csv(parser: argparse.ArgumentParser, rows: str) -> None:
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help=f"a JSON array of {rows}")
    output.add_argument("--csv", action="store_true", help="CSV with a header line")


def global_options(database: str | None) -> Parser:
    """The options every command takes, before or after its name: ``--db`` described as
    ``database`` (none without it). SUPPRESS keeps a value given in one place from being reset
    by the default of the other."""
    common = Parser(add_help=False)
    if database is not None:
        common.add_argument(
            "--db", dest="database_url", metavar="URL", default=argparse.SUPPRESS, help=database
        )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (twice for the libraries' debug output too)",
    )
    common.add_argument(
        "-q", "--quiet", action="count", default=argparse.SUPPRESS, help="less log output"
    )
    common.add_argument(
        "--log-format",
        dest="log_format",
        metavar="FORMAT",
        default=argparse.SUPPRESS,
        help=OPTIONS["log_format"].describe(),
    )
    return common
