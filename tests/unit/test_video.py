"""Reading video objects, relays' variants included (SPEC §1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tracker.core.video import NotAVideoError, Phase, parse_progress, parse_timestamp, parse_video


@pytest.mark.parametrize(
    "status", ["completed", "succeeded", "success", "done", "SUCCESS", "Completed", " done "]
)
def test_success_statuses_in_any_case_are_terminal_success(status: str) -> None:
    """Every spelling of success in SPEC §1 ends the task as completed."""
    assert Phase.of(status) is Phase.SUCCEEDED


@pytest.mark.parametrize(
    "status", ["failed", "failure", "FAILURE", "error", "cancelled", "canceled", "expired"]
)
def test_failure_statuses_in_any_case_are_terminal_failure(status: str) -> None:
    """Every spelling of failure in SPEC §1 ends the task as failed."""
    assert Phase.of(status) is Phase.FAILED


@pytest.mark.parametrize(
    "status",
    [
        "queued",
        "in_progress",
        "pending",
        "processing",
        "running",
        "NOT_START",
        "SUBMITTED",
        "IN_PROGRESS",
        "unknown",
        "something-new",
    ],
)
def test_anything_else_keeps_polling(status: str) -> None:
    """Unknown and in-between statuses are running: the task is polled again."""
    assert Phase.of(status) is Phase.RUNNING


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (45, 45),
        ("45%", 45),
        (" 7 % ", 7),
        ("100", 100),
        (45.9, 45),
        (150, 100),
        (-3, 0),
        (None, None),
        ("soon", None),
        (True, None),
        (float("nan"), None),
        ([], None),
    ],
)
def test_progress_becomes_an_integer_from_0_to_100_or_none(
    value: object, expected: int | None
) -> None:
    """Integers, floats and "45%" strings are read; anything else is NULL."""
    assert parse_progress(value) == expected


def test_timestamps_in_seconds_and_milliseconds_mean_the_same_instant() -> None:
    """Relays sending milliseconds are detected; numeric strings are read too."""
    instant = datetime(2025, 10, 16, 5, 27, 14, tzinfo=UTC)
    assert parse_timestamp(1760592434) == instant
    assert parse_timestamp(1760592434000) == instant
    assert parse_timestamp("1760592434") == instant
    assert parse_timestamp(None) is None
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(0) is None


def test_parse_video_reads_the_openai_example() -> None:
    """The SPEC §1 example yields its status, progress, metadata and UTC timestamps."""
    video = parse_video(
        {
            "id": "video_68f0",
            "object": "video",
            "created_at": 1760592434,
            "status": "completed",
            "completed_at": 1760592506,
            "error": None,
            "expires_at": 1760596106,
            "model": "sora-2",
            "progress": 100,
            "remixed_from_video_id": None,
            "seconds": "4",
            "size": "720x1280",
        }
    )
    assert video.phase is Phase.SUCCEEDED
    assert (video.status, video.progress, video.model, video.seconds, video.size) == (
        "completed",
        100,
        "sora-2",
        "4",
        "720x1280",
    )
    assert video.completed_at == datetime(2025, 10, 16, 5, 28, 26, tzinfo=UTC)
    assert video.error is None


def test_parse_video_keeps_the_error_object_whole() -> None:
    """A failed video's error object is kept as sent."""
    error = {"code": "moderation_blocked", "message": "blocked", "extra": [1]}
    assert parse_video({"status": "failed", "error": error}).error == error


@pytest.mark.parametrize("document", [[], "completed", {"id": "x"}, {"status": 3}, {"status": ""}])
def test_documents_without_a_status_are_not_videos(document: object) -> None:
    """A body the tracker cannot read a status from is an error, not a silent success."""
    with pytest.raises(NotAVideoError):
        parse_video(document)
