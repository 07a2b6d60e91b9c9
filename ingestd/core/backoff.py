"""Pure: how long to wait after consecutive failures, and when a streak is worth a log line.

A failure that repeats (a full state dir, a read-only output dir, a database that is down) is
said once when it starts and once when it ends, not once per try; the waits between tries
double up to a cap. The caller passes the clock, so this is tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Streak:
    base: float
    cap: float = 300.0
    failures: int = 0
    until: float = 0.0

    def fail(self, now: float) -> bool:
        """Count one failure; True when it starts a streak (say so)."""
        self.failures += 1
        self.until = now + min(self.base * 2 ** min(self.failures - 1, 30), self.cap)
        return self.failures == 1

    def succeed(self) -> bool:
        """The thing works again; True when that ends a streak (say so)."""
        ended = self.failures > 0
        self.failures = 0
        self.until = 0.0
        return ended

    def delay(self, now: float) -> float:
        """Seconds to wait before the next try."""
        return max(0.0, self.until - now)
