"""What the app works with: the database, the settings, the time, and the hook the process
serving it offers (a daemon serving it keeps a task a webhook made due due; ``tracker serve``
has none)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import Request

from tracker.core.actions import Action, BulkCount, OneByOne
from tracker.core.clock import Clock
from tracker.core.models import AddResult, NewTask, RemoveResult, TaskFilter
from tracker.settings import Settings
from tracker.store import Database


class Probes(Protocol):
    """What ``/healthz`` and ``/metrics`` answer."""

    def health(self) -> tuple[bool, dict[str, object]]: ...

    def metrics(self) -> tuple[bytes, str]:
        """The exposition and its content type."""


def _nothing(*_args: object) -> None:
    pass


@dataclass
class Service:
    database: Database
    settings: Settings
    clock: Clock
    probes: Probes
    #: The API said this task changed: a poller here keeps it due.
    made_due: Callable[[str], None] = field(default=_nothing)

    def register(self, new_tasks: list[NewTask]) -> AddResult:
        """Register tasks (the API's and the dashboard's way); the write wakes the daemons
        (tracker/store/wakeups.py)."""
        return self.database.tasks.register(new_tasks, self.clock.now())

    def remove(self, task_ids: list[str]) -> RemoveResult:
        """Finish tasks as ``removed`` (the API's and the dashboard's way), each owing what any
        finished task owes on the notification channels this process is configured with: the
        same as ``tracker remove`` and a daemon would, whichever process finishes it."""
        channels = self.settings.notification_channels()
        return self.database.tasks.remove_tasks(task_ids, self.clock.now(), channels=channels)

    def act(self, action: OneByOne, task_ids: list[str]) -> list[str]:
        """Poll now or reopen tasks, all or nothing (tracker/store/actions.py); a poller here
        keeps them due, as for a webhook."""
        changed = self.database.actions.act(action, task_ids, self.clock.now())
        for task_id in changed:
            self.made_due(task_id)
        return changed

    def bulk(self, action: Action, selection: list[str] | TaskFilter) -> BulkCount:
        """An action on many tasks, a batch at a time; removed tasks owe what ``remove``'s do.
        The daemons are woken by the writes themselves."""
        channels = self.settings.notification_channels()
        return self.database.actions.bulk(action, selection, self.clock.now(), channels=channels)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
