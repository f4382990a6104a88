"""Who holds a lease, and giving back at once the leases of this machine's daemons that are
gone (a ``kill -9``), so that a restart goes on where they stopped instead of waiting for the
leases to expire (docs/scaling.md)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from pathlib import Path

from tracker.store.leases import LeaseStore

logger = logging.getLogger(__name__)


def daemon_id() -> str:
    """Who holds a lease: host, PID namespace, process, and a random part for uniqueness."""
    return f"{_process_home()}:{os.getpid()}:{secrets.token_hex(4)}"


def _process_home() -> str:
    """Where a PID names one process: this boot of this machine (the boot ID is random per
    boot, so hosts sharing a name differ) and this PID namespace (containers have their own)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return f"{socket.gethostname()[:48]}:unknown"
    return f"{socket.gethostname()[:48]}:{boot}.{namespace}"


def release_leases_of_dead_daemons(store: LeaseStore) -> list[str]:
    home = _process_home()
    if home.endswith(":unknown"):
        return []  # without a boot ID, a PID here cannot be told from one elsewhere
    dead = []
    for owner in store.lease_owners():
        owner_home, _, rest = owner.rpartition(":")[0].rpartition(":")
        if owner_home == home and rest.isdigit() and not _is_running(int(rest)):
            dead.append(owner)
    if dead:
        store.release_owners(dead)
        logger.info("released the leases of %d stopped daemons: %s", len(dead), ", ".join(dead))
    return dead


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
