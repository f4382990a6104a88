"""The daemon: what runs while ``tracker run`` does.

``runner`` wires a daemon from its settings (and makes the one-off passes of ``tracker poll``
and ``tracker download``); ``scheduler`` drives its jobs on APScheduler; ``lanes`` runs a poller
per provider as one; ``poller`` claims, polls and writes, following ``rules`` (one task),
``pause`` (the whole account of its provider), ``shortage`` (this machine's resources),
``claims`` and ``writes``, and tells ``observing`` what it did;
``events`` builds what a finished task owes; ``workers`` claims and runs follow-up jobs:
``downloads`` and ``notify``; ``retention`` prunes; ``metrics`` counts and answers health;
``until_done`` says what a run until done cannot wait for; ``serving`` serves the HTTP app
(the API's webhooks among its routes) from a daemon or alone; ``leases`` names the daemon and
frees a dead one's leases; ``dbthread`` is the one thread its database calls run on;
``descriptors`` raises the open-file limit and checks that the daemon fits under it.

May import ``tracker.store``, ``tracker.http``, ``tracker.web`` (when it serves),
``tracker.settings``, ``tracker.core`` and ``tracker.errors``; never the command line.
"""
