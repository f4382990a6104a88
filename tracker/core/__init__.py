"""The vocabulary every layer shares: the records that pass between them (``models``), how a
video object is read (``video``), task IDs and status paths (``ids``), time (``clock``), the
back-off rule (``backoff``), a provider's pause (``pauses``), secrets (``secrets``), JSON values
(``encoding``) and the event loop (``eventloop``).

Imports nothing of tracker but ``tracker.errors``; every other layer may import it.
"""
