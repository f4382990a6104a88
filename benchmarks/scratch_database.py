"""A PostgreSQL database of the benchmarks' own, made on a server and dropped afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A database of its own on ``server``, dropped afterwards."""
    import psycopg

    name = f"tracker_bench_{os.getpid()}"
    admin_url = server.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = admin_url.rpartition("/")[0]
            yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
