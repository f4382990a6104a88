"""What the benchmarks here share: their options (the docstring as the help, --smoke), their
figures, said as they come and then as one Markdown table, and smoke mode's verdict."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

#: The figures the benchmark running gave, in order: (section, measure, value).
RESULTS: list[tuple[str, str, str]] = []
SMOKE_HELP = "every section in seconds at tiny sizes, checking that each gave its figures"


def options(description: str | None) -> argparse.ArgumentParser:
    """A benchmark's options, its docstring above them as written."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The options given, --smoke last among them."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    return parser.parse_args()


def report(section: str, what: str, value: str, width: int = 58) -> None:
    """A figure, said now (``what`` padded to ``width``) and kept for the table."""
    RESULTS.append((section, what, value))
    print(f"  {what:{width}s} {value}", flush=True)


def finish(smoke: bool, sections: Iterable[str], heading: str = "section") -> None:
    """Every figure kept, as a table whose first column ``heading`` heads; in smoke mode, then
    the verdict that each of ``sections`` gave one."""
    print(f"\n| {heading} | measure | result |\n|---|---|---|")
    for section, what, value in RESULTS:
        print(f"| {section} | {what} | {value} |")
    if smoke:
        check_figures(sections, RESULTS)


def check_figures(sections: Iterable[str], results: Sequence[tuple[str, str, str]]) -> None:
    """Smoke mode's verdict: each of ``sections`` gave at least one figure in ``results``
    (section, measure, value); what the figures are is not judged."""
    ran = list(sections)
    silent = [name for name in ran if not any(row[0] == name and row[2] for row in results)]
    if silent:
        sys.exit(f"smoke: no figures from {', '.join(silent)}")
    print(f"smoke: figures from every section run ({', '.join(ran)})", flush=True)
