"""The package's shape: imports point down the layers (docs/architecture.md), the public
names are the ones documented, and no module grows past a newcomer's sitting."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tracker

PACKAGE = Path(tracker.__file__).parent
# What each part may import, besides itself: the layers below it.
BOTTOM = {"errors", "_version"}
ALLOWED = {
    "errors": set(),
    "_version": set(),
    "core": BOTTOM,
    "client": BOTTOM,
    "settings": BOTTOM | {"core"},
    "store": BOTTOM | {"core", "settings"},
    "http": BOTTOM | {"core", "settings"},
    "simulator": BOTTOM | {"core", "http"},
    "web": BOTTOM | {"core", "settings", "store", "http"},
    "daemon": BOTTOM | {"core", "settings", "store", "http", "web"},
    "python_api": BOTTOM | {"core", "settings", "store", "daemon"},
    "testing": BOTTOM | {"core", "settings", "store", "web", "daemon"},
    "cli": BOTTOM
    | {"core", "settings", "store", "http", "web", "daemon", "python_api", "simulator"},
}
LONGEST_MODULE = 400
MOST_ARGUMENTS = 8


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "tracker" and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    """A module imports only its own part and the parts below it."""
    part = part_of(path)
    if part == "__init__" or part == "__main__":
        return  # the package's face re-exports from every layer
    assert part in ALLOWED, f"{part} is not a known layer: add it to ALLOWED and the docs"
    upward = imported_parts(path) - ALLOWED[part] - {part} - {"migrations"}
    assert not upward, f"{path.relative_to(PACKAGE)} imports {sorted(upward)} from above"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_a_sitting(path: Path) -> None:
    """No module passes about 400 lines."""
    lines = len(path.read_text().splitlines())
    assert lines <= LONGEST_MODULE, f"{path.relative_to(PACKAGE)} has {lines} lines"


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "daemon").glob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_constructor_in_the_daemon_takes_more_than_eight_arguments(path: Path) -> None:
    """What many parts share travels together (``Crew``, a poller's ``Lane``), not as a long
    list of arguments."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            arguments = node.args
            named = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            count = len(named) - 1 + bool(arguments.vararg) + bool(arguments.kwarg)
            assert count <= MOST_ARGUMENTS, f"{path.name}:{node.lineno} takes {count}"


def test_every_part_says_what_it_owns_and_may_import() -> None:
    """Each subpackage's docstring says what it owns and what it may import."""
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init.parent.name} does not say what it may import"


_NAMED = re.compile(r"``([a-z_]+)``")


@pytest.mark.parametrize("init", sorted(PACKAGE.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_every_part_names_its_modules_and_only_those(init: Path) -> None:
    """A subpackage's docstring names each of its modules (``name``), and every plain name it
    puts in double backquotes is one of them: a module moved or removed is not left behind in
    the map a reader starts from."""
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    named = set(_NAMED.findall(doc))
    modules = {path.stem for path in init.parent.glob("*.py") if not path.stem.startswith("__")}
    assert named - modules == set(), f"{init.parent.name} names modules it does not have"
    assert modules - named == set(), f"{init.parent.name} does not name these modules"


def test_the_public_names_are_the_documented_ones() -> None:
    """`from tracker import …` offers exactly these names (docs/python-api.md)."""
    assert sorted(tracker.__all__) == [
        "AddCount",
        "AddResult",
        "ConfigError",
        "DatabaseError",
        "FinishReason",
        "InvalidTaskIDError",
        "NoDatabaseError",
        "PassSummary",
        "Pause",
        "QueryError",
        "QueryRefusedError",
        "QueryResult",
        "QueryTimeoutError",
        "RemoveResult",
        "ReportQueryError",
        "ReportRow",
        "Secret",
        "Settings",
        "Snapshot",
        "Task",
        "TaskStateError",
        "Tracker",
        "TrackerError",
        "UndeclaredProviderError",
        "UnknownProviderError",
        "UnknownTaskError",
        "UsageError",
        "__version__",
    ]
    for name in tracker.__all__:
        assert getattr(tracker, name) is not None


def fresh_interpreter(code: str) -> str:
    """What ``code`` prints run in a Python of its own, nothing imported before it."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_a_daemon_serving_nothing_does_not_load_the_web_stack() -> None:
    """`tracker run` without a port imports no FastAPI, uvicorn, Jinja2, pydantic or
    prometheus-client: they would cost it some 28 MB (docs/performance.md, Memory)."""
    code = (
        "import sys, tracker.cli.main, tracker.daemon.runner, tracker.python_api\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'fastapi', 'uvicorn', 'jinja2', 'pydantic', 'starlette', 'prometheus_client'}))"
    )
    assert fresh_interpreter(code).strip() == "[]"


def test_the_http_client_does_not_load_the_database_layer() -> None:
    """An application that only talks to a tracker over HTTP (`import tracker.client`) loads no
    SQLAlchemy, Alembic or database driver: `tracker.Tracker`, `Settings` and `QueryResult`
    are loaded when first asked for, and are then the very classes of their modules."""
    code = (
        "import sys, tracker.client\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'sqlalchemy', 'alembic', 'psycopg', 'sqlite3'}))\n"
        "from tracker import Tracker, QueryResult\n"
        "import tracker.python_api, tracker.store\n"
        "print(Tracker is tracker.python_api.Tracker, QueryResult is tracker.store.QueryResult)"
    )
    assert fresh_interpreter(code).splitlines() == ["[]", "True True"]
    with pytest.raises(AttributeError, match="no attribute 'Trackr'"):
        tracker.Trackr  # noqa: B018
