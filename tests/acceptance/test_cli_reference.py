"""docs/cli.md, the command and settings reference, matches the installed `tracker` command:
every command, flag and TRACKER_* variable its --help shows is in it, and nothing in it is
missing from the command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
TRACKER = str(Path(sys.executable).with_name("tracker"))
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
_VARIABLE = re.compile(r"\bTRACKER_[A-Z_]+\b")


def help_text(*command: str) -> str:
    result = subprocess.run(
        [TRACKER, *command, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def commands() -> list[str]:
    """The subcommands `tracker --help` lists, one per line under COMMAND."""
    return re.findall(r"^    ([a-z][a-z-]*)  ", help_text(), re.M)


def section(title: str) -> str:
    """One `## ` section of the reference, its `### ` subsections included."""
    text = REFERENCE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_command_has_a_row_and_a_section_and_every_row_a_command() -> None:
    """The command table has one row per subcommand of the installed command, and each
    subcommand a `### ` section of its own, in the order --help lists them."""
    listed = commands()
    rows = re.findall(r"^\| `([a-z][a-z-]*)", section("Commands"), re.M)
    assert rows == listed
    headings = re.findall(r"^### (.+)$", section("Commands"), re.M)
    assert headings == listed


def test_every_flag_and_variable_is_documented_and_exists() -> None:
    """Each flag and TRACKER_* variable of every command's --help is in the reference, and each
    flag there is one the command knows."""
    helps = [help_text(), *(help_text(command) for command in commands())]
    known_flags = {flag for text in helps for flag in _FLAG.findall(text)}
    known_variables = {name for text in helps for name in _VARIABLE.findall(text)}
    reference = REFERENCE.read_text()
    documented_flags = set(_FLAG.findall(reference))
    documented_variables = set(_VARIABLE.findall(reference))
    assert known_flags - {"--help"} - documented_flags == set()
    assert documented_flags - known_flags == set()
    assert known_variables - documented_variables == set()
    # The settings tables name each variable in a row of its own.
    rows = set(re.findall(r"^\| `(TRACKER_[A-Z_]+)`", section("Settings"), re.M))
    assert known_variables - rows == set()
    assert rows - known_variables == set()
