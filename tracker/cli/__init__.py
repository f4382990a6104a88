"""The command line (``tracker …``): parsing arguments, calling the Python API, printing results.

``main`` runs a command; ``parser`` declares them all (one table a reader can scan) and which
settings each one reads, with the flags they share from ``flags``; the handlers are grouped by
what they touch: ``tasks`` (add, remove, poll-now, reopen, list, history), ``polling`` (poll,
run, download), ``operating`` (stats, watch, prune, export, sql, db, demo), ``reporting``
(report); ``common`` is what they share. ``id_files`` reads the IDs of ``add --file``,
``render`` turns rows into text, ``live`` draws the live view (of ``tracker watch`` and the
demo), ``demo`` runs the demo, ``logs`` configures log lines. May import everything below it;
nothing imports it.
"""

from tracker.cli.main import main

__all__ = ["main"]
