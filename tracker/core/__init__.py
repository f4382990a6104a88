"""The vocabulary every layer shares: the records that pass between them (``models``), the event
feed's positions (``feed``), what a finished task owes (``follow_ups``, the records, and
``owed``, the rule), how a video object is read (``video``), task IDs and status paths
(``ids``), what people may do to tasks (``actions``: remove, poll now, reopen), a task's
metadata (``metadata``), time (``clock``), the back-off rule (``backoff``), a provider's pause
(``pauses``), the daemons at work (``daemons``), what the report is asked and gives
(``report``), what an export writes (``exports``), secrets (``secrets``), JSON values
(``encoding``), the event loop (``eventloop``) and short texts for people (``texts``: ages,
durations, IDs cut short).

Imports nothing of tracker but ``tracker.errors``; every other layer may import it.
"""
