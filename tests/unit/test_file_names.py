"""The names downloaded files get from task IDs."""

from __future__ import annotations

from tracker.daemon.downloads import file_name


def test_a_plain_id_is_the_file_name() -> None:
    """An ID fit for a file name is used as it is, the variant and type giving the rest."""
    assert file_name("video_68f0a1", "video", "video/mp4") == "video_68f0a1.mp4"
    assert file_name("video_68f0a1", "spritesheet", "image/jpeg") == "video_68f0a1.spritesheet.jpg"


def test_unsafe_ids_are_cleaned_and_kept_apart_by_a_hash() -> None:
    """Slashes and leading dots never reach the file system; two IDs that clean the same way
    still get different names."""
    first = file_name("../a/b", "video", "video/mp4")
    second = file_name("../a_b", "video", "video/mp4")
    assert "/" not in first and not first.startswith(".")
    assert first != second


def test_the_longest_valid_ids_still_make_a_usable_name() -> None:
    """256-character IDs (the longest accepted) give names under the 255-byte limit, distinct
    from each other even when they share their first 200 characters."""
    names = {file_name("v" * 255 + ending, "spritesheet", "image/webp") for ending in ("a", "b")}
    assert len(names) == 2
    assert all(len(name.encode()) <= 255 for name in names)
