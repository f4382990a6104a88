"""Reading video objects, relays' variants included (docs/relays.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tracker.core.video import (
    NotAVideoError,
    OtherTaskError,
    Phase,
    RelayError,
    parse_progress,
    parse_timestamp,
    parse_video,
    relay_error,
)


@pytest.mark.parametrize(
    "status", ["completed", "succeeded", "success", "done", "SUCCESS", "Completed", " done "]
)
def test_success_statuses_in_any_case_are_terminal_success(status: str) -> None:
    """Every spelling of success ends the task as completed."""
    assert Phase.of(status) is Phase.SUCCEEDED


@pytest.mark.parametrize(
    "status",
    ["failed", "failure", "FAILURE", "fail", "error", "cancelled", "canceled", "expired"],
)
def test_failure_statuses_in_any_case_are_terminal_failure(status: str) -> None:
    """Every spelling of failure, and relays' "fail", ends the task as failed."""
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
    """OpenAI's example video object yields its status, progress, metadata and UTC timestamps."""
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


def test_a_fraction_in_progress_is_read_as_a_percentage() -> None:
    """0.45 is 0 %, not 45 %: no relay is known to send a fraction under ``progress``, and 1
    could mean either 1 % or all of it (docs/relays.md)."""
    assert parse_progress(0.45) == 0
    assert parse_progress(1) == 1


# Relay answers: envelopes, other field names, the ID check (docs/relays.md)


@pytest.mark.parametrize(
    "envelope",
    [
        {"code": 0, "msg": "ok"},
        {"code": 200, "msg": "success"},
        {"code": "success", "message": ""},
        {"code": "200"},
        {},
    ],
)
def test_an_envelope_that_went_through_is_unwrapped(envelope: dict[str, object]) -> None:
    """{"code": 0, 200 or "success", "msg": …, "data": {video}}: the video is read from data."""
    data = {"task_id": "task_1", "status": "IN_PROGRESS", "progress": "45%", "model": "sora-2"}
    video = parse_video({**envelope, "data": data}, "task_1")
    assert (video.status, video.progress, video.model) == ("IN_PROGRESS", 45, "sora-2")


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        ({"code": 404, "msg": "task not exist", "data": None}, 404, "task not exist"),
        (
            {"code": "task_not_exist", "message": "task_not_exist"},
            "task_not_exist",
            "task_not_exist",
        ),
        ({"code": 1001, "msg": "quota exhausted", "data": {}}, 1001, "quota exhausted"),
        ({"code": 500, "data": []}, 500, "the relay answered code 500"),
    ],
)
def test_an_envelope_whose_code_says_failure_is_a_relay_error(
    document: dict[str, object], code: object, message: str
) -> None:
    """A failure code without a video in data raises RelayError carrying the relay's code and
    message; it is still a NotAVideoError, so no status is read from it."""
    with pytest.raises(RelayError) as raised:
        parse_video(document, "task_1")
    assert (raised.value.code, raised.value.message) == (code, message)
    assert isinstance(raised.value, NotAVideoError)


def test_an_envelope_that_went_through_without_a_video_is_not_a_video() -> None:
    """{"code": "success", "data": null} (a relay with nothing to say) is not a video, and not a
    relay error either."""
    with pytest.raises(NotAVideoError) as raised:
        parse_video({"code": "success", "data": None})
    assert not isinstance(raised.value, RelayError)


def test_a_video_in_data_is_read_whatever_the_envelope_code() -> None:
    """The task's status is what is tracked: a video in data is read even beside a failure code
    (the code is about the request, and the raw body keeps it)."""
    video = parse_video({"code": 500, "msg": "upstream slow", "data": {"status": "queued"}})
    assert video.status == "queued"


def test_only_one_level_of_envelope_and_no_lists_are_unwrapped() -> None:
    """A list in data, or an envelope inside data, is not a video: no relay is known to answer
    one task's status that way, and guessing which element is the task is not safe."""
    for document in (
        {"code": 0, "data": [{"status": "queued"}]},
        {"code": 0, "data": {"data": {"status": "queued"}}},
    ):
        with pytest.raises(NotAVideoError):
            parse_video(document)


def test_relay_field_names_are_read_as_openai_s() -> None:
    """``state`` for ``status`` and ``taskId`` for ``id``; ``status`` wins when both are sent."""
    video = parse_video({"taskId": "sora-2:task_9", "state": "generating"}, "sora-2:task_9")
    assert (video.status, video.phase) == ("generating", Phase.RUNNING)
    assert parse_video({"status": "queued", "state": "SUCCESS"}).status == "queued"


@pytest.mark.parametrize("key", ["fail_reason", "failReason", "failMsg", "message"])
def test_a_failed_task_s_reason_as_text_becomes_an_error_object(key: str) -> None:
    """Without an error object, a failed task's text reason is the error, in OpenAI's shape."""
    video = parse_video({"task_id": "t", "status": "FAILURE", key: "content policy"})
    assert video.error == {"code": None, "message": "content policy"}


def test_reasons_as_text_are_not_errors_unless_the_task_failed() -> None:
    """A running task's ``message`` (often "success") is no error, and an error object, when
    there is one, is kept over any text."""
    assert parse_video({"status": "IN_PROGRESS", "message": "success"}).error is None
    error = {"code": "moderation_blocked", "message": "blocked"}
    assert parse_video({"status": "failed", "error": error, "fail_reason": "x"}).error == error
    assert parse_video({"status": "failed", "fail_reason": "  "}).error is None


def test_the_video_url_a_relay_sends_is_kept() -> None:
    """``video_url`` (or ``result_url``) is exposed as Video.video_url; null or not text is None."""
    url = "https://cdn.example/v/1.mp4"
    assert parse_video({"status": "completed", "video_url": url}).video_url == url
    assert parse_video({"status": "SUCCESS", "result_url": url}).video_url == url
    assert parse_video({"status": "queued", "video_url": None}).video_url is None
    assert parse_video({"status": "queued", "video_url": 7}).video_url is None


@pytest.mark.parametrize(
    ("answered", "polled"),
    [
        ({"id": "video_1"}, "video_1"),
        ({"id": "sora-2:task_01H"}, "task_01H"),
        ({"task_id": "task_01H"}, "sora-2:task_01H"),
        ({"id": 7, "task_id": "task_01H"}, "task_01H"),
        ({"id": "row-7", "task_id": "task_01H"}, "task_01H"),
        ({}, "task_01H"),
        ({"id": ""}, "task_01H"),
    ],
)
def test_an_answer_about_the_polled_task_is_accepted(
    answered: dict[str, object], polled: str
) -> None:
    """The same ID, the same after a relay's <model>: prefix, any one of id/task_id/taskId
    matching (an integer id is a row number), or no ID at all: the video is read."""
    assert parse_video({**answered, "status": "queued"}, polled).status == "queued"


@pytest.mark.parametrize(
    ("document", "polled", "named"),
    [
        ({"id": "video_2", "status": "completed"}, "video_1", "video_2"),
        ({"code": 0, "data": {"task_id": "task_B", "state": "SUCCESS"}}, "sora-2:task_A", "task_B"),
        ({"taskId": "sora-2:task_A", "status": "queued"}, "sora-2-pro:task_A", "sora-2:task_A"),
        ({"id": "task_A_2", "status": "queued"}, "task_A", "task_A_2"),
    ],
)
def test_an_answer_about_another_task_raises(
    document: dict[str, object], polled: str, named: str
) -> None:
    """An answer naming only other tasks raises OtherTaskError naming both IDs, so another
    task's status is never stored as the polled one's."""
    with pytest.raises(OtherTaskError) as raised:
        parse_video(document, polled)
    assert str(raised.value) == f"the answer is about task {named!r}, not {polled!r}"


def test_without_a_polled_id_no_id_is_checked() -> None:
    """parse_video without ``task_id`` reads any video (the ID check is the caller's choice)."""
    assert parse_video({"id": "video_2", "status": "queued"}).status == "queued"


def test_relay_error_reads_only_envelopes_that_failed() -> None:
    """relay_error gives the failure of an envelope, and None for anything else."""
    failure = relay_error({"code": 401, "msg": "bad key"})
    assert failure is not None and (failure.code, failure.message) == (401, "bad key")
    for document in ({"code": 0}, {"status": "failed"}, {"code": None}, [], "x"):
        assert relay_error(document) is None
