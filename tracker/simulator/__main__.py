"""``python -m tracker.simulator``: the simulated API on its own, until interrupted, with the
benchmarks' preloaded videos; ``tracker simulator`` is the one for trying tracker."""

from __future__ import annotations

import argparse
import threading

from tracker.simulator.api import Simulator
from tracker.simulator.lifecycles import Reply
from tracker.simulator.server import SimulatorServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tracker.simulator",
        description="Serve the simulated video API until interrupted. Create videos with "
        "POST /v1/videos; each GET advances one step of its lifecycle.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default="sim-token", help="the bearer token it accepts")
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        metavar="N",
        help="create N videos named video_0 … video_{N-1} that stay in progress (for benchmarks)",
    )
    args = parser.parse_args(argv)
    simulator = Simulator(token=args.token)
    forever = [Reply(video={"status": "in_progress", "progress": 50})]
    for index in range(args.preload):
        simulator.script(f"video_{index}", forever)
    server = SimulatorServer(simulator, host=args.host, port=args.port)
    print(
        f"simulated video API at {server.start()} (token {args.token!r}); Ctrl-C stops it",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


main()
