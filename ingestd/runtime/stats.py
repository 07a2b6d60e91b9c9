"""Pure: the per-worker statistics each worker reports, in O(1) per file.

For a history x_1..x_n with newest x_n, the "sum of squares" is sum((x_i - x_n)^2). It is
answered from running moments instead of a loop over the history:

    sum((x_i - c)^2) = M2 + n * (mean - c)^2

where mean and M2 (sum of squared deviations from the mean) are kept with Welford's update.
Both are kept over `x - K`, with K the first sample, so that large magnitudes (1e9 minutes)
do not cancel away the digits that matter; the naive `S2 - 2*c*S1 + n*c^2` loses them all.
"""

from __future__ import annotations

from dataclasses import dataclass

REPORT_EVERY = 5


@dataclass
class RunningStats:
    """Files processed, total minutes and the rolling sum of squared differences."""

    count: int = 0
    total: float = 0.0
    _shift: float = 0.0  # K: the first sample
    _mean: float = 0.0  # mean of (x - K)
    _m2: float = 0.0  # sum of squared deviations of (x - K) from _mean
    _last: float = 0.0  # newest sample minus K

    def add(self, minutes: float) -> None:
        if self.count == 0:
            self._shift = minutes
        y = minutes - self._shift
        self.count += 1
        self.total += minutes
        delta = y - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (y - self._mean)
        self._last = y

    def add_many(self, values: list[float]) -> None:
        """`add` each value in order (the same arithmetic, in one loop of locals)."""
        if not values:
            return
        if self.count == 0:
            self._shift = values[0]
        shift, count, total, mean, m2 = self._shift, self.count, self.total, self._mean, self._m2
        y = self._last
        for minutes in values:
            y = minutes - shift
            count += 1
            total += minutes
            delta = y - mean
            mean += delta / count
            m2 += delta * (y - mean)
        self.count, self.total, self._mean, self._m2, self._last = count, total, mean, m2, y

    @property
    def sum_of_squares(self) -> float:
        """sum((x_i - x_n)^2) over the whole history, x_n the newest sample."""
        if self.count == 0:
            return 0.0
        return self._m2 + self.count * (self._mean - self._last) ** 2

    def due(self) -> bool:
        """True when the newest file completes a batch of five: time to report."""
        return self.count > 0 and self.count % REPORT_EVERY == 0

    def fields(self) -> dict[str, float | int]:
        """The `stats` event fields."""
        return {
            "files_processed": self.count,
            "total_time": round(self.total, 6),
            "sum_of_squares": round(self.sum_of_squares, 6),
        }


def format_number(value: float) -> str:
    """35.0 -> '35', 1450.98123 -> '1450.9812': whole numbers print as whole numbers."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def stats_line(files_processed: float, total_time: float, sum_of_squares: float) -> str:
    """The console line: `Files processed: 5, Total Time: 35, Sum of Squares: 30`."""
    return (
        f"Files processed: {int(files_processed)}, "
        f"Total Time: {format_number(total_time)}, "
        f"Sum of Squares: {format_number(sum_of_squares)}"
    )
