"""The HTTP service: the JSON API, the event stream, the dashboard, health and metrics, on
FastAPI and uvicorn.

``app`` builds the app and holds its route table; ``api`` is ``/v1`` (the lists' filters and
orders read by ``queries``), ``actions`` its actions on tasks (poll now, reopen, in bulk),
``exports`` its export; ``events`` the event stream; ``operations`` health, metrics, the API's
webhooks (``webhooks``) and the docs; ``auth`` server tokens and browser sessions; ``problems``
errors as RFC 9457 problem details; ``schemas`` what the API takes and gives; ``cursors``
paging; ``limits`` request sizes; ``server`` runs the app on uvicorn in a loop it does not own;
``service`` is what the app works with. The dashboard (docs/dashboard.md): ``pages`` its routes
(the overview's query string in ``filters``), ``login`` who may see a page and the login page,
``templating`` the Jinja2 templates (``templates/``) and the pages' headers, ``acting`` its
actions on tasks (a task's buttons, the overview's choice of tasks, each confirmed), ``views``
what its chart and timeline draw, ``summary`` the counts read in the background; its
stylesheets and scripts (JavaScript modules) are in ``static/dashboard``.

What the history says (docs/insights.md): ``reports`` is ``/v1/report``, ``insights`` the
Insights page, ``charts`` what its charts draw.

May import ``tracker.store``, ``tracker.http`` (webhook signing), ``tracker.settings``,
``tracker.core`` and ``tracker.errors``; the daemon serves it, so it never imports the daemon.
"""
