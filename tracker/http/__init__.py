"""Talking HTTP to the video API and to the user's receivers.

``transport`` is the fast HTTP/1.1 transport under httpx (keep-alive, TLS, proxies), its
connections in ``connection``;
``client`` makes one poll and turns every outcome into a ``FetchResult``; ``transfers``
downloads a finished video's files and posts notifications; ``proxy_router`` sends those
through the chosen proxy; ``signing`` signs and verifies Standard Webhooks; ``messages`` says
what failed in one line, the token redacted.

May import ``tracker.core``, ``tracker.settings`` and ``tracker.errors``; never the store, the
daemon or the command line.
"""
