"""The daemon: what runs while ``tracker run`` (or ``tracker serve``) does.

``lifecycle`` owns the process's life: it starts the parts, handles the signals, waits for the
stop and drains within a bounded time. ``runner`` wires a daemon from its settings (and makes
the one-off passes of ``tracker poll`` and ``tracker download``); ``lanes`` runs a poller per
provider as one loop, woken by writes; ``poller`` claims, polls and writes, following ``rules``
(one task), ``pause`` (the whole account of its provider), ``shortage`` (this machine's
resources), ``claims`` and ``writes``, and tells ``observing`` what it did; ``running`` holds
what the parts share (``Crew``) and how they run what they claim (``Running``); ``workers`` is
the follow-up workers' loop, ``downloads`` and ``notify`` the workers, ``follow_up_workers``
makes them from the settings; ``scheduler`` runs the periodic jobs (the sweep, ``retention``);
``metrics`` counts and answers health; ``presence`` keeps the daemon's row in the daemons table;
``until_done`` says what a run until done cannot wait for; ``serving`` serves the HTTP app (the
API's webhooks among its routes) as a part of the lifecycle, from a daemon or alone; ``leases``
names the daemon and frees a dead one's leases; ``dbthread`` is the thread its database
calls run on (on PostgreSQL its claims have a second); ``descriptors`` raises the open-file
limit and checks that the daemon fits under it.

May import ``tracker.store``, ``tracker.http``, ``tracker.web`` (when it serves),
``tracker.settings``, ``tracker.core`` and ``tracker.errors``; never the command line.
"""
