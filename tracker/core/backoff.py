"""The one back-off rule: after the n-th failure in a row, wait ``first * 2**n`` capped at
``cap``, shortened by random jitter so that many failures at once do not retry at once.

Polls, downloads, notifications and the account-wide pause after a refused token all use it,
with their own first step and cap (docs/failures.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first: float  # seconds, the wait after the first failure (n = 0)
    cap: float  # seconds, the longest wait
    jitter: float = 0.0  # up to this fraction of the wait is taken off at random

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failures`` + 1 failures in a row (``failures`` from 0)."""
        ceiling = min(self.first * 2.0 ** min(max(failures, 0), 32), self.cap)
        if not self.jitter:
            return ceiling
        return ceiling * (rng or random).uniform(1.0 - self.jitter, 1.0)
