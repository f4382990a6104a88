"""Task ID rules (SPEC §4) and their URL encoding."""

from __future__ import annotations

import pytest

from tracker.core.ids import check_task_id, check_task_ids, path_segment
from tracker.errors import InvalidTaskIDError


@pytest.mark.parametrize(
    "task_id",
    ["video_68f0a1", "sora-2:task_01HXYZ", "a", "x" * 256, "!$&'()*+,;=:@~._-", 'A"<>^`{|}'],
)
def test_accepts_printable_ascii_ids(task_id: str) -> None:
    """IDs of 1 to 256 printable ASCII characters without the forbidden ones pass unchanged."""
    assert check_task_id(task_id) == task_id


@pytest.mark.parametrize(
    ("task_id", "reason"),
    [
        ("", "empty"),
        ("x" * 257, "longer than 256"),
        ("has space", "whitespace"),
        ("tab\there", "whitespace"),
        ("new\nline", "whitespace"),
        ("é", "'é'"),
        ("a/b", "'/'"),
        ("a?b", "'?'"),
        ("a#b", "'#'"),
        ("a%2Fb", "'%'"),
        ("a\\b", "'\\\\'"),
        (".", "path segment"),
        ("..", "path segment"),
        ("nul\x00", "'\\x00'"),
    ],
)
def test_rejects_ids_outside_the_rules_and_says_why(task_id: str, reason: str) -> None:
    """Each rule of SPEC §4 refuses the ID with a message naming the ID and the rule."""
    with pytest.raises(InvalidTaskIDError) as caught:
        check_task_id(task_id)
    assert reason in str(caught.value)
    assert str(caught.value).startswith("invalid task ID")


def test_check_task_ids_keeps_order_and_drops_duplicates() -> None:
    """Repeated IDs in one call count once; the first invalid one raises."""
    assert check_task_ids(["b", "a", "b"]) == ["b", "a"]
    with pytest.raises(InvalidTaskIDError, match="'a b'"):
        check_task_ids(["ok", "a b", "also ok"])


@pytest.mark.parametrize(
    ("task_id", "segment"),
    [
        ("sora-2:task_01H", "sora-2:task_01H"),
        ('quote"d', "quote%22d"),
        ("curly{x}", "curly%7Bx%7D"),
        ("pipe|caret^", "pipe%7Ccaret%5E"),
    ],
)
def test_path_segment_escapes_only_what_a_segment_cannot_hold(task_id: str, segment: str) -> None:
    """Colons stay readable for relays; characters not allowed in a path are percent-escaped."""
    assert path_segment(task_id) == segment
    assert "/" not in path_segment(task_id)
