"""Every link between README.md and docs/*.md leads somewhere: the file exists and, for a link
to a heading, the page has that heading (anchors as GitHub makes them)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces as
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, outside code blocks; a repeated heading's anchor gets
    -1, -2, … as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        heading = None if in_code else _HEADING.match(line)
        if heading is not None:
            name = anchor(heading.group(1))
            count = seen.get(name, 0)
            seen[name] = count + 1
            found.add(name if count == 0 else f"{name}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(page.read_text()):
        if re.match(r"[a-z][a-z+]*:", target):
            continue  # a URL, not a file of the repository
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists() or (
            fragment
            and destination.suffix == ".md"
            and fragment not in anchors(destination.read_text())
        ):
            broken.append(target)
    return broken


def test_anchors_are_made_as_github_makes_them() -> None:
    text = "# Slow answers, thousands in flight\n```\n# not a heading\n```\n## The API's webhooks\n"
    text += "### `add`\n## Figures\n## Figures\n"
    assert anchors(text) == {
        "slow-answers-thousands-in-flight",
        "the-apis-webhooks",
        "add",
        "figures",
        "figures-1",
    }


def test_every_link_between_the_documents_resolves() -> None:
    broken = {page.name: links for page in documents() if (links := broken_links(page))}
    assert broken == {}


def test_a_link_to_a_missing_heading_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n## Present\n")
    page.write_text("[a](other.md#present) [b](other.md#absent) [c](gone.md) [d](#here)\n# Here\n")
    assert broken_links(page) == ["other.md#absent", "gone.md"]
