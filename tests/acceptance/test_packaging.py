"""What `pip install` puts on a machine: the migrations travel inside the package, and the
commands work from anywhere, the repository's root included (where the source folder shadows
the installed package)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The project built as a wheel and installed (not editable) into a folder of its own:
    the wheel and that folder."""
    work = tmp_path_factory.mktemp("wheel")
    wheels = work / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = wheels.glob("video_task_tracker-*.whl")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield wheel, target


def run(args: list[str], cwd: Path, target: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` seeing the installed wheel and the dependencies, but not this checkout's
    editable install: ``-S`` skips the .pth file that would map the package to the source."""
    path = os.pathsep.join([str(target), sysconfig.get_path("purelib")])
    return subprocess.run(
        [sys.executable, "-S", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_carries_the_migrations_and_db_upgrade_works_from_it(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """Built and installed as a wheel, `tracker db upgrade` finds its migrations anywhere."""
    wheel, target = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "tracker/migrations/env.py",
        "tracker/migrations/script.py.mako",
        "tracker/migrations/versions/0001_create_tasks_and_snapshots.py",
        "tracker/py.typed",
    } <= names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = run(
        ["-c", "import tracker.store.migrations as m; print(m.MIGRATIONS_DIR)"],
        elsewhere,
        target,
    )
    assert probe.stdout.strip().startswith(str(target)), probe.stderr
    database = f"sqlite:///{elsewhere / 'x.db'}"
    result = run(["-m", "tracker", "--db", database, "db", "upgrade"], elsewhere, target)
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout


def test_from_the_repository_root_the_commands_and_alembic_work(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """Installed (not editable) and run from the repository's root, where the source folder
    comes first on the path: `python -m tracker`, `python -m tracker.simulator --help` and
    `alembic upgrade head` all work and find the migrations."""
    _wheel, target = installed
    help_text = run(["-m", "tracker", "--help"], ROOT, target)
    assert help_text.returncode == 0, help_text.stderr
    assert "demo" in help_text.stdout
    simulator = run(["-m", "tracker.simulator", "--help"], ROOT, target)
    assert simulator.returncode == 0, simulator.stderr
    database = tmp_path / "root.db"
    upgrade = run(
        ["-m", "tracker", "--db", f"sqlite:///{database}", "db", "upgrade"],
        ROOT,
        target,
    )
    assert upgrade.returncode == 0 and "(head)" in upgrade.stdout, upgrade.stderr
    via_alembic = tmp_path / "alembic.db"
    alembic = run(
        ["-m", "alembic", "upgrade", "head"],
        ROOT,
        target,
        TRACKER_DATABASE_URL=f"sqlite:///{via_alembic}",
    )
    assert alembic.returncode == 0, alembic.stderr
    current = run(
        ["-m", "tracker", "--db", f"sqlite:///{via_alembic}", "db", "current"],
        ROOT,
        target,
    )
    assert "(head)" in current.stdout, current.stderr


def test_the_wheel_carries_the_dashboards_templates_and_assets(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """Every template and asset of the dashboard is in the wheel (no CDN: a machine without
    internet serves it whole), and the installed app finds them in the installed package."""
    wheel, target = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    web = ROOT / "tracker" / "web"
    shipped = [
        path.relative_to(ROOT).as_posix()
        for folder in ("templates", "static/dashboard")
        for path in (web / folder).rglob("*")
        if path.is_file()
    ]
    assert len(shipped) >= 10
    assert set(shipped) <= names, sorted(set(shipped) - names)
    probe = run(
        [
            "-c",
            "import tracker.web.app as app, tracker.web.templating as t; "
            "print(app.STATIC); print(t.TEMPLATES); print(len(t._ENVIRONMENT.list_templates()))",
        ],
        tmp_path,
        target,
    )
    static, templates, count = probe.stdout.split()
    assert static.startswith(str(target)) and templates.startswith(str(target)), probe.stderr
    assert int(count) == len([name for name in shipped if name.endswith(".html")])
