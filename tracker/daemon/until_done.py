"""What running until done cannot wait for: unfinished tasks of a provider the configuration
does not declare are never polled, so a run that waited for them would never end, and one
that did not would end as if they were done (docs/providers.md)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from tracker.daemon.dbthread import DatabaseThread
from tracker.errors import UndeclaredProviderError
from tracker.store.polls import PollStore


async def refuse_undeclared(
    database: DatabaseThread,
    polls: PollStore,
    declared: Iterable[str],
    task_ids: Collection[str] | None = None,
) -> None:
    """Raise UndeclaredProviderError if unfinished tasks (among ``task_ids``, if given) name a
    provider not in ``declared``."""
    named = await database.run(polls.unfinished_providers, task_ids)
    undeclared = sorted(named - set(declared))
    if undeclared:
        raise UndeclaredProviderError(undeclared)
