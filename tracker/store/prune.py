"""Deleting the repetitions of finished tasks' histories (``tracker prune``, ``run --retain``;
docs/operating.md, Retention). The rule, in SQL: of a finished task's snapshots older than the
cutoff, keep the first, the last, and every one whose status differs from the one before."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, false, func, select, true

from tracker.store.base import SQLStore
from tracker.store.partitions import Partitions
from tracker.store.schema import snapshots, tasks

MAX_TASKS_PER_PRUNE = 500  # a prune batch's tasks, however short their histories


class RetentionStore(SQLStore):
    def __init__(self, engine: Engine, partitions: Partitions) -> None:
        super().__init__(engine)
        self._partitions = partitions

    @property
    def by_days(self) -> bool:
        """Whether pruning drops whole days (PostgreSQL): cheap enough to do every hour."""
        return self._partitions.partitioned

    def prune_batch(
        self,
        older_than: datetime,
        after_task_id: str | None,
        snapshots_per_batch: int,
        dry_run: bool,
    ) -> tuple[int, str | None]:
        """Delete (or with ``dry_run`` count) the snapshots older than ``older_than`` of the next
        finished tasks after ``after_task_id``, as many tasks as hold about
        ``snapshots_per_batch`` snapshots (at least one), keeping each task's first snapshot, its
        last (the one that finished it, or the last seen of a task given up or removed), and
        every one whose status differs from the snapshot before it. Returns the count and the
        last task looked at (None when done).

        Batches bounded by the rows they read keep each transaction short, however long the
        tasks' histories, so pruning never holds the database for long; a task's snapshots are
        read through their (task_id, polled_at) index, so the cost follows what is pruned, not
        the size of the table.

        On PostgreSQL, where snapshots retention keeps are apart from the rest and the rest is
        kept a day a partition, the days wholly before ``older_than`` are dropped instead, in
        one batch, and what they held is counted as PostgreSQL's statistics count it."""
        if self._partitions.partitioned:
            return self._partitions.drop_days_before(older_than, dry_run), None
        candidates = (
            select(tasks.c.task_id, tasks.c.poll_count)
            .where(tasks.c.finished == true())
            .order_by(tasks.c.task_id)
            .limit(MAX_TASKS_PER_PRUNE)
        )
        if after_task_id is not None:
            candidates = candidates.where(tasks.c.task_id > after_task_id)
        forward = (snapshots.c.polled_at, snapshots.c.id)
        backward = (snapshots.c.polled_at.desc(), snapshots.c.id.desc())
        with self._writing() as connection:
            task_ids: list[str] = []
            held = 0
            # poll_count bounds a task's snapshots (fewer with --record changes).
            for task_id, poll_count in connection.execute(candidates):
                if task_ids and held + poll_count > snapshots_per_batch:
                    break
                task_ids.append(task_id)
                held += poll_count
            if not task_ids:
                return 0, None
            ordered = (
                select(
                    snapshots.c.id,
                    snapshots.c.polled_at,
                    snapshots.c.finished,
                    snapshots.c.status,
                    func.lag(snapshots.c.status)
                    .over(partition_by=snapshots.c.task_id, order_by=forward)
                    .label("previous_status"),
                    func.row_number()
                    .over(partition_by=snapshots.c.task_id, order_by=forward)
                    .label("position"),
                    func.row_number()
                    .over(partition_by=snapshots.c.task_id, order_by=backward)
                    .label("from_end"),
                )
                .where(snapshots.c.task_id.in_(task_ids))
                .subquery()
            )
            prunable = select(ordered.c.id).where(
                ordered.c.polled_at < older_than,
                ordered.c.position > 1,
                ordered.c.from_end > 1,
                ordered.c.finished == false(),
                ordered.c.status.is_not_distinct_from(ordered.c.previous_status),
            )
            if dry_run:
                count = connection.scalar(select(func.count()).select_from(prunable.subquery()))
            else:
                count = connection.execute(
                    delete(snapshots).where(snapshots.c.id.in_(prunable))
                ).rowcount
        return int(count or 0), task_ids[-1]
