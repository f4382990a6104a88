"""How long reading one answer takes: tracker.core.video.parse_video on the shapes of
docs/relays.md, the polled ID checked as the client checks it.

    python benchmarks/parse_video.py [--number 100000] [--repeat 15]
    python benchmarks/parse_video.py --smoke    # a hundred calls of each shape (the tests')

Prints the best of ``--repeat`` runs of ``--number`` calls, in nanoseconds per call, plus the
``.phase`` the poller reads next. The machine's load moves these numbers: compare two versions
of the code in one sitting, alternating. --smoke times a hundred calls once and checks that
every shape gave its figure, not what it is.
"""

from __future__ import annotations

import argparse
import inspect
import json
import timeit
from collections.abc import Callable
from typing import Any

from results import check_figures, parse

from tracker.core.video import NotAVideoError, parse_video

OPENAI = (
    '{"id": "video_68f0a1b2c3", "object": "video", "created_at": 1760592434, '
    '"status": "in_progress", "completed_at": null, "error": null, "expires_at": null, '
    '"model": "sora-2", "progress": 45, "remixed_from_video_id": null, "seconds": "4", '
    '"size": "720x1280"}'
)
ENVELOPE = (
    '{"code": 0, "msg": "success", "data": {"task_id": "video_68f0a1b2c3", '
    '"state": "IN_PROGRESS", "progress": "45%", "created_at": 1760592434000, '
    '"model": "sora-2", "seconds": "4", "size": "720x1280", "video_url": null}}'
)
TASK_ID = "video_68f0a1b2c3"


def reader(body: str) -> Callable[[], Any]:
    document = json.loads(body)
    # Versions from before the ID check take the document alone.
    if "task_id" in inspect.signature(parse_video).parameters:
        return lambda: parse_video(document, TASK_ID).phase
    return lambda: parse_video(document).phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parse(parser)
    number, repeat = (100, 1) if args.smoke else (args.number, args.repeat)
    shapes = (("OpenAI video object", OPENAI), ("relay envelope", ENVELOPE))
    figures = []
    for name, body in shapes:
        read = reader(body)
        try:
            read()
        except NotAVideoError:
            print(f"{name:20s}      not read by this version")
            continue
        best = min(timeit.repeat(read, number=number, repeat=repeat)) / number
        figures.append((name, "per answer", f"{best * 1e9:6.0f} ns"))
        print(f"{name:20s} {figures[-1][2]} per answer")
    if args.smoke:
        check_figures([name for name, _ in shapes], figures)


if __name__ == "__main__":
    main()
