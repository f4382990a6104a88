"""What a page costs a Chromium nobody drives, as a user's browser runs: no DevTools attached
(Playwright's connection has the renderer report every chunk and event it receives, which costs
it CPU of its own), the renderers' CPU time read from /proc. Used by dashboard.py; on its own:

    python benchmarks/plain_chromium.py [--url about:blank] [--seconds 20]
    python benchmarks/plain_chromium.py --smoke    # half a second (the tests')

--smoke settles for a second and measures for half of one, and checks that both figures came;
without /usr/bin/chromium it says so and measures nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from results import RESULTS, check_figures, options, parse, report
from throughput import cpu_seconds

CHROMIUM = "/usr/bin/chromium"
SETTLE_SECONDS = 4  # the page loaded, its stream open and the rows moving
SMOKE_SETTLE_SECONDS = 1


def plain_renderers(
    url: str, profile: Path, seconds: float, settle: float = SETTLE_SECONDS
) -> tuple[float, float]:
    """Chromium showing ``url`` with no DevTools attached: the share of a core its busiest
    renderer (the page's) and all its renderers used over ``seconds``, after ``settle``."""
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
        time.sleep(settle)
        renderers = renderers_of(profile)
        before = {pid: cpu_seconds(pid) for pid in renderers}
        started = time.monotonic()
        time.sleep(seconds)
        used = {pid: cpu_seconds(pid) - before[pid] for pid in renderers}
        wall = time.monotonic() - started
    finally:
        browser.terminate()
        browser.wait(30)
        gone(profile)
    return max(used.values()) / wall, sum(used.values()) / wall


def gone(profile: Path, seconds: float = 30) -> None:
    """Until no process of the Chromium using ``profile`` is left: its helpers outlive the
    browser's own process a moment and write into the profile, which removed meanwhile fails
    with "Directory not empty"."""
    deadline = time.monotonic() + seconds
    while any(str(profile) in command for _, command in processes()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Chromium's processes outlived it by {seconds:g} s")
        time.sleep(0.05)


def renderers_of(profile: Path, seconds: float = 30) -> list[int]:
    """The renderer processes of the Chromium using ``profile``, once it has one."""
    deadline = time.monotonic() + seconds
    while True:
        found = [
            pid
            for pid, command in processes()
            if str(profile) in command and "--type=renderer" in command
        ]
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"Chromium started no renderer in {seconds:g} s")
        time.sleep(0.1)


def processes() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # gone meanwhile
            yield int(entry.name), command


def percent(share: float) -> str:
    return f"{100 * share:.2f}% of a core"


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--url", default="about:blank", help="the page shown (about:blank)")
    parser.add_argument("--seconds", type=float, default=20, help="the measuring window (20)")
    args = parse(parser)
    if not Path(CHROMIUM).exists():
        print(f"page: skipped (no Chromium at {CHROMIUM})")
        return
    seconds, settle = (0.5, SMOKE_SETTLE_SECONDS) if args.smoke else (args.seconds, SETTLE_SECONDS)
    with tempfile.TemporaryDirectory(prefix="tracker-chromium-") as scratch:
        page, every = plain_renderers(args.url, Path(scratch), seconds, settle)
    report("page", f"{args.url}, plain Chromium: the page's renderer", percent(page))
    report("page", f"{args.url}, plain Chromium: every renderer", percent(every))
    if args.smoke:
        check_figures(["page"], RESULTS)


if __name__ == "__main__":
    main()
