"""Task ID rules (docs/cli.md, Task IDs) and their URL encoding."""

from __future__ import annotations

import pytest

from tracker.core.ids import (
    StatusPath,
    check_task_id,
    check_task_ids,
    parse_status_path,
    path_segment,
    query_value,
    same_task,
)
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
    """Each rule refuses the ID with a message naming the ID and the rule."""
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


def test_query_value_escapes_all_but_unreserved_characters_and_colons() -> None:
    """In a query value "&", "=", "+" and the rest are escaped; ":" stays (RFC 3986 allows it)."""
    assert query_value("sora-2:task_01H") == "sora-2:task_01H"
    assert query_value("a&b=c+d;e@f") == "a%26b%3Dc%2Bd%3Be%40f"
    assert query_value('q"{x}') == "q%22%7Bx%7D"


@pytest.mark.parametrize(
    ("template", "task_id", "path"),
    [
        ("/v1/videos/{id}", "sora-2:task_1", "/v1/videos/sora-2:task_1"),
        ("/v1/videos/{id}", "a&b", "/v1/videos/a&b"),
        ("/v1/video/query?id={id}", "sora-2:task_1", "/v1/video/query?id=sora-2:task_1"),
        ("/v1/video/query?id={id}", "a&b+c", "/v1/video/query?id=a%26b%2Bc"),
        ("/api/tasks/{id}?view=full", "a&b", "/api/tasks/a&b?view=full"),
    ],
)
def test_a_status_path_escapes_the_id_for_where_it_stands(
    template: str, task_id: str, path: str
) -> None:
    """{id} in the path is escaped as one path segment, in the query as one query value."""
    assert StatusPath(template)(task_id) == path


def test_a_status_path_refuses_invalid_ids() -> None:
    """The ID rules hold wherever the ID goes."""
    with pytest.raises(InvalidTaskIDError):
        StatusPath("/v1/video/query?id={id}")("a/b")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("v1/videos/{id}", "starting with a single /"),
        ("https://relay.example/v1/videos/{id}", "starting with a single /"),
        ("//relay.example/v1/videos/{id}", "starting with a single /"),
        ("/v1/videos/", "exactly once"),
        ("/v1/{id}/videos/{id}", "exactly once"),
        ("/v1/videos/{task_id}", "exactly once"),
        ("/v1/{model}/{id}", "only placeholder"),
        ("/v1/videos/{id}#x", "fragment"),
        ("/v1/videos /{id}", "spaces"),
    ],
)
def test_unusable_status_paths_are_refused_saying_why(template: str, reason: str) -> None:
    """parse_status_path (and StatusPath) refuse templates that could not be a status path."""
    with pytest.raises(ValueError, match=reason):
        parse_status_path(template)
    with pytest.raises(ValueError, match=reason):
        StatusPath(template)


def test_a_usable_status_path_is_returned_unchanged() -> None:
    """What the settings keep is the template as written."""
    assert parse_status_path("/v1/video/query?id={id}") == "/v1/video/query?id={id}"


@pytest.mark.parametrize(
    ("answered", "polled", "same"),
    [
        ("task_1", "task_1", True),
        ("sora-2:task_1", "task_1", True),
        ("task_1", "sora-2:task_1", True),
        ("sora-2:task_1", "sora-2-pro:task_1", False),
        ("task_1", "task_2", False),
        ("task_1", "TASK_1", False),
        (":task_1", "task_1", False),
    ],
)
def test_same_task_allows_a_model_prefix_on_either_side(
    answered: str, polled: str, same: bool
) -> None:
    """Equal IDs, or one the other after dropping a "<model>:" prefix, are the same task."""
    assert same_task(answered, polled) is same


def test_the_documented_id_pattern_agrees_with_the_rules() -> None:
    """The OpenAPI document's pattern for a task ID accepts exactly what check_task_id does."""
    import re

    from tracker.web.schemas import TASK_ID_PATTERN

    pattern = re.compile(TASK_ID_PATTERN)
    candidates = [".", "..", "...", "a" * 256, "a" * 257, "sora-2:task_01H", "v/1", "v 1", "é"]
    for code in range(0x20, 0x7F):
        candidates += [chr(code), chr(code) * 2, f"a{chr(code)}b"]
    for candidate in candidates:
        try:
            check_task_id(candidate)
            valid = True
        except InvalidTaskIDError:
            valid = False
        assert valid == bool(pattern.fullmatch(candidate)), candidate
