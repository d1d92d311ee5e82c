"""Timestamps and durations with the nanosecond precision of protobuf's well-known types.

Python's datetime stops at microseconds, and Temporal records nanoseconds
(`"2026-11-22T01:40:41.324341506Z"`, `"0.127756457s"`), so both are kept as whole seconds
plus nanos. Their text form is RFC 3339 / `<seconds>s` with 0, 3, 6 or 9 fractional digits,
the rule protobuf and Temporal's JSON codecs both follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Duration", "Timestamp", "TimeValueError"]

_NANOS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z"
)
_DURATION = re.compile(r"(-)?(\d+)(?:\.(\d{1,9}))?s\Z")
_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_MAX_DURATION_SECONDS = 315576000000  # protobuf's +-10,000 years


class TimeValueError(ValueError):
    """A timestamp or duration text that protobuf's JSON mapping would refuse."""


def _fraction(nanos: int) -> str:
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar.
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """A point in time: seconds since the Unix epoch plus 0 <= nanos < 10**9."""

    seconds: int
    nanos: int = 0

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        match = _TIMESTAMP.match(text)
        if match is None:
            raise TimeValueError(f"not an RFC 3339 timestamp: {text[:64]!r}")
        year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
            raise TimeValueError(f"timestamp out of range: {text[:64]!r}")
        try:
            datetime(year, month, day)
        except ValueError as e:
            raise TimeValueError(f"not a calendar date: {text[:64]!r}") from e
        frac = match.group(7)
        nanos = int(frac.ljust(9, "0")) if frac else 0
        seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        if match.group(9):
            offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
            seconds -= offset if match.group(9) == "+" else -offset
        if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
            raise TimeValueError(f"timestamp outside 0001..9999: {text[:64]!r}")
        return cls(seconds, nanos)

    @classmethod
    def from_datetime(cls, value: datetime) -> Timestamp:
        delta = value - _EPOCH if value.tzinfo else value.replace(tzinfo=UTC) - _EPOCH
        micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        seconds, micro = divmod(micros, 1_000_000)
        return cls(seconds, micro * 1000)

    @classmethod
    def from_nanos(cls, total: int) -> Timestamp:
        seconds, nanos = divmod(total, _NANOS)
        return cls(seconds, nanos)

    @property
    def total_nanos(self) -> int:
        return self.seconds * _NANOS + self.nanos

    def to_datetime(self) -> datetime:
        """The same instant as an aware UTC datetime, truncated to microseconds."""
        return _EPOCH + timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)

    def __sub__(self, other: Timestamp) -> Duration:
        return Duration.from_nanos(self.total_nanos - other.total_nanos)

    def __str__(self) -> str:
        days, rest = divmod(self.seconds, 86400)
        date = _EPOCH.date() + timedelta(days=days)
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        return (
            f"{date.year:04d}-{date.month:02d}-{date.day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
            f"{_fraction(self.nanos)}Z"
        )


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A signed span of time: seconds plus nanos, both of the same sign, as in protobuf."""

    seconds: int
    nanos: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _DURATION.match(text)
        if match is None:
            raise TimeValueError(f"not a protobuf duration: {text[:64]!r}")
        seconds = int(match.group(2))
        frac = match.group(3)
        nanos = int(frac.ljust(9, "0")) if frac else 0
        if seconds > _MAX_DURATION_SECONDS:
            raise TimeValueError(f"duration out of range: {text[:64]!r}")
        if match.group(1):
            return cls(-seconds, -nanos)
        return cls(seconds, nanos)

    @classmethod
    def from_nanos(cls, total: int) -> Duration:
        sign = -1 if total < 0 else 1
        seconds, nanos = divmod(abs(total), _NANOS)
        return cls(sign * seconds, sign * nanos)

    @property
    def total_nanos(self) -> int:
        return self.seconds * _NANOS + self.nanos

    def to_timedelta(self) -> timedelta:
        """The same span, truncated to microseconds."""
        return timedelta(seconds=self.seconds, microseconds=int(self.nanos / 1000))

    def __add__(self, other: Duration) -> Duration:
        return Duration.from_nanos(self.total_nanos + other.total_nanos)

    def __str__(self) -> str:
        sign = "-" if self.seconds < 0 or self.nanos < 0 else ""
        return f"{sign}{abs(self.seconds)}{_fraction(abs(self.nanos))}s"
