"""Writes the dashboard's screenshots in docs/images from a real run: the simulator, a daemon
polling it and serving the dashboard on SQLite, Chromium opening the pages; the Insights page
once a week of history is added (tests/insights_history.py).

    python docs/make_screenshots.py [--out docs/images]

Needs the test extra (Playwright) and Chromium at /usr/bin/chromium (Debian's ``chromium``).
The browser tests (tests/integration/test_dashboard.py) take the same screenshots.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import chromium, demo, sign_in, take_screenshots  # noqa: E402
from tests.insights_history import insights_screenshots, seed_history  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="tracker-screenshots-") as scratch,
        demo(f"sqlite:///{Path(scratch) / 'demo.db'}", poll_interval=0.6) as running,
        chromium() as browser,
    ):
        for path in take_screenshots(browser, running, args.out):
            print(path)
        seed_history(running.tracker.database, datetime.now(UTC))
        for path in insights_screenshots(browser, running.url, args.out, sign_in):
            print(path)


if __name__ == "__main__":
    main()
