"""A week of history for the Insights page to draw: tasks of three models registered around the
clock, most completed after a queue and a render of their model's length, some failed for the
reasons video APIs give (each with its failing snapshot), a few ended otherwise or still
running; and the page's screenshots (docs/dashboard.md), which docs/make_screenshots.py and the
browser tests take with the same function."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from tracker.store import Database
from tracker.store.schema import snapshots, tasks

# Each model's render: the median seconds, and how far apart runs are (a lognormal sigma).
MODELS = {"sora-2": (95.0, 0.35), "sora-2-pro": (260.0, 0.4), "veo-3": (150.0, 0.3)}
SIZES = ("1280x720", "720x1280")
REASONS = [
    ("moderation_blocked", "Your request was blocked by our moderation system.", 6),
    ("internal_error", "The video could not be generated. Please try again.", 3),
    ("invalid_request", "The reference image does not match the requested size.", 2),
    ("content_policy_violation", "The prompt may violate our content policy.", 1),
]


def seed_history(database: Database, now: datetime, count: int = 1500, seed: int = 7) -> None:
    """``count`` tasks registered over the week before ``now``, busier in the day (UTC)."""
    rng = random.Random(seed)
    task_rows: list[dict[str, Any]] = []
    failing: list[dict[str, Any]] = []
    for index in range(count):
        registered = now - timedelta(days=7) * rng.random() ** 0.9
        if rng.random() < 0.45 and 1 <= registered.hour <= 6:
            registered += timedelta(hours=8)  # fewer at night
        registered = min(registered, now - timedelta(seconds=30))
        model = rng.choice(list(MODELS))
        median, spread = MODELS[model]
        created = registered - timedelta(seconds=rng.uniform(0.5, 3))
        running_at = created + timedelta(seconds=rng.expovariate(1 / 25))
        took = (running_at - created).total_seconds() + rng.lognormvariate(0, spread) * median
        row: dict[str, Any] = {
            "task_id": f"video_{seed:02d}{index:06d}{rng.getrandbits(48):012x}",
            "label": rng.choice(["launch", "ads", None]),
            "model": model,
            "size": rng.choice(SIZES),
            "seconds": rng.choice(["4", "8", "12"]),
            "provider": "default",
            "registered_at": registered,
            "created_at": created,
            "poll_count": max(1, int(took // 10)),
        }
        done = created + timedelta(seconds=took)
        fate = rng.random()
        if done > now:
            row.update(status="in_progress", next_poll_at=now, finished=False)
            row["first_running_at"] = running_at if running_at < now else None
        elif fate < 0.06:
            failed_at = created + timedelta(seconds=took * rng.uniform(0.1, 0.6))
            reason = rng.choices(REASONS, weights=[weight for _, _, weight in REASONS])[0]
            row.update(_finished("failed", failed_at), first_running_at=running_at)
            failing.append(
                {
                    "task_id": row["task_id"],
                    "polled_at": failed_at,
                    "http_status": 200,
                    "status": "failed",
                    "error": {"code": reason[0], "message": reason[1]},
                    "finished": True,
                }
            )
        elif fate < 0.08:
            ending = rng.choice(["not_found", "timed_out", "removed"])
            row.update(_finished(ending, done), status=None)
        else:
            row.update(_finished("completed", done), first_running_at=running_at, progress=100)
        task_rows.append(row)
    with database.engine.begin() as connection:
        for row in task_rows:  # one at a time: the rows do not all name the same columns
            connection.execute(insert(tasks).values(**row))
        if failing:
            connection.execute(insert(snapshots), failing)


def _finished(reason: str, at: datetime) -> dict[str, Any]:
    return {
        "status": reason if reason in ("completed", "failed") else None,
        "finished": True,
        "finish_reason": reason,
        "finished_at": at,
        "next_poll_at": at,
        "last_polled_at": at,
    }


def insights_screenshots(browser: Any, url: str, out: Path, sign_in: Any) -> list[Path]:
    """The Insights page, wide and at a phone's width, whole."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, width, height in (("insights.png", 1280, 900), ("insights-phone.png", 375, 800)):
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme="light"
        )
        page = context.new_page()
        sign_in(page, url)
        page.goto(f"{url}/insights")
        page.wait_for_selector("main h1")
        page.screenshot(path=out / name, full_page=True)
        shots.append(out / name)
        context.close()
    return shots
