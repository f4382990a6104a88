"""A simulator of the video API, served over real HTTP (on 127.0.0.1 unless told otherwise).

It plays whole task lifecycles (queued, in progress with rising progress, then completed,
failed or vanished; in OpenAI's shape or a relay's), answers 404 for unknown IDs and 401 for a
missing or wrong token, and can be scripted answer by answer. Each GET of a video consumes the
next answer of its script; the last one repeats. A video is also answered at
``/v1/video/query?id=…``, as some relays do. ``POST /v1/videos`` makes a video whose prompt picks
its lifecycle. It backs ``tracker simulator``, ``tracker demo`` and the tests;
``python -m tracker.simulator`` serves it for the benchmarks (docs/simulator.md).

``lifecycles`` holds the scripted answers and the lifecycles made of them, ``api`` the simulated
API's state and answers, ``server`` serves it on ``http`` (a small HTTP/1.1 server), ``events``
sends the API's own webhooks. May import ``tracker.core`` and ``tracker.http`` (the webhook
signing); nothing of the store, the daemon or the command line.

    simulator = Simulator(token="sk-test")
    simulator.add_video("video_1", steps=3)
    with SimulatorServer(simulator) as base_url:
        ...  # GET {base_url}/v1/videos/video_1
"""

from tracker.simulator.api import CONTENT_TYPES, Simulator, content_of
from tracker.simulator.events import send_webhook
from tracker.simulator.lifecycles import Reply
from tracker.simulator.server import SimulatorServer

__all__ = ["CONTENT_TYPES", "Reply", "Simulator", "SimulatorServer", "content_of", "send_webhook"]
