"""``tracker``'s entry point: parse, load the settings the command uses, run it, turn errors
into exit codes. Exit codes: 0 success, 2 bad usage or bad input (one line on stderr, nothing
written), 1 any other failure."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from tracker.cli import logs
from tracker.cli.common import fail
from tracker.cli.parser import build_parser
from tracker.errors import TrackerError, UsageError
from tracker.settings import OPTIONS, Settings, load_settings
from tracker.store.engine import reported_errors


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args, Settings())
    try:
        args.settings = _load(args)
        configure_logging(args, args.settings)
        with reported_errors():
            code: int = args.handler(args)
    except UsageError as exc:
        fail(exc)
        return 2
    except TrackerError as exc:
        fail(exc)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: one line says why the command ended before its work was done.
        fail(TrackerError("interrupted"))
        return 130
    except BrokenPipeError:
        # The reader (e.g. `head`) went away: not an error of ours. Silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def configure_logging(args: argparse.Namespace, settings: Settings, shift: int = 0) -> None:
    verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0) + shift
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(
        max(-2, verbosity), logging.DEBUG
    )
    libraries_level = logging.DEBUG if verbosity >= 2 else max(level, logging.WARNING)
    secrets = [
        s.reveal()
        for s in (settings.token, settings.notify_secret, settings.webhook_secret)
        if s is not None
    ] + settings.proxy.secrets()
    for provider in settings.providers:
        secrets += [provider.token.reveal()] if provider.token is not None else []
        if provider.webhook_secret is not None:
            secrets.append(provider.webhook_secret.reveal())
        secrets += provider.proxy.secrets() if provider.proxy is not None else []
    logs.configure(level, libraries_level, settings.log_format, secrets)


def _load(args: argparse.Namespace) -> Settings:
    """The settings the command uses, and only those (docs: docs/cli.md, Settings)."""
    flags = {field: getattr(args, field, None) for field in OPTIONS}
    flags["token_file"] = getattr(args, "token_file", None)
    return load_settings(args.fields, flags, spelled=getattr(args, "spelled", None))
