"""What a page costs a Chromium nobody drives, as a user's browser runs: no DevTools attached
(Playwright's connection has the renderer report every chunk and event it receives, which costs
it CPU of its own), the renderers' CPU time read from /proc. Used by dashboard.py."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from throughput import cpu_seconds

CHROMIUM = "/usr/bin/chromium"
SETTLE_SECONDS = 4  # the page loaded, its stream open and the rows moving


def plain_renderers(url: str, profile: Path, seconds: float) -> tuple[float, float]:
    """Chromium showing ``url`` with no DevTools attached: the share of a core its busiest
    renderer (the page's) and all its renderers used over ``seconds``."""
    browser = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--no-first-run",
            "--window-size=1280,720",
            f"--user-data-dir={profile}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(SETTLE_SECONDS)
        renderers = [
            pid
            for pid, command in processes()
            if str(profile) in command and "--type=renderer" in command
        ]
        before = {pid: cpu_seconds(pid) for pid in renderers}
        started = time.monotonic()
        time.sleep(seconds)
        used = {pid: cpu_seconds(pid) - before[pid] for pid in renderers}
        wall = time.monotonic() - started
    finally:
        browser.terminate()
        browser.wait(30)
    return max(used.values()) / wall, sum(used.values()) / wall


def processes() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # gone meanwhile
            yield int(entry.name), command
