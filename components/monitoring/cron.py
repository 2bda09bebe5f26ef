"""How long a 5-field cron schedule can leave between two of its runs: what a backup's age is judged by.

The schedule is read as CloudNativePG's ``ScheduledBackup`` runs it (with a seconds field of 0 in
front): robfig/cron v1.2.0, which internal/controller/scheduledbackup_controller.go parses it with
at v1.29.1, in the operator's time zone (UTC). Numbers, ``*``, ranges, steps and lists, as
``settings/data_values.py`` accepts them: ``N/step`` is ``N-max/step``; day of week 7 is Sunday,
as 0. A day must match both day fields when either starts with ``*`` (``0 3 * * 0``: Sundays),
and either one otherwise (``0 3 1 * 0``: the 1st of each month and every Sunday).

The Gregorian calendar repeats every 400 years, 146 097 days, a whole number of weeks: the gaps
between the runs of one such cycle, the last run followed by the first of the next cycle, are
every gap the schedule will ever leave. The walk is by day (the runs of a matching day are the
same hours and minutes every day), so it stays cheap for any schedule, ``0 0 29 2 *`` included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from itertools import pairwise

#: Each field's bounds: minute, hour, day of month, month, day of week (0 and 7 are Sunday).
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
#: Days of the Gregorian calendar's cycle: the weekday and the date repeat after it.
CYCLE_DAYS = 146_097
#: Any day: where the walk over one cycle starts.
_FIRST_DAY = date(2001, 1, 1).toordinal()
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class _Field:
    values: frozenset[int]
    #: The field has an item starting with ``*`` (robfig's star bit): it does not restrict the day alone.
    star: bool


def _field(text: str, low: int, high: int) -> _Field:
    values: set[int] = set()
    star = False
    for item in text.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last, star = low, high, True
        else:
            first_text, _, last_text = span.partition("-")
            first = int(first_text)
            last = int(last_text) if last_text else (high if step else first)
        values.update(range(first, last + 1, int(step or 1)))
    return _Field(frozenset(values), star)


def _run_days(day_of_month: _Field, month: _Field, day_of_week: _Field) -> list[int]:
    """The ordinals of the days of one calendar cycle on which the schedule runs."""
    weekdays = {day % 7 for day in day_of_week.values}
    either = not (day_of_month.star or day_of_week.star)
    days = []
    for ordinal in range(_FIRST_DAY, _FIRST_DAY + CYCLE_DAYS):
        day = date.fromordinal(ordinal)
        if day.month not in month.values:
            continue
        # date(1, 1, 1) is ordinal 1 and a Monday: ordinal % 7 is cron's day of week (Sunday 0).
        in_month, in_week = day.day in day_of_month.values, ordinal % 7 in weekdays
        if (in_month or in_week) if either else (in_month and in_week):
            days.append(ordinal)
    return days


@cache
def longest_interval(schedule: str) -> timedelta:
    """The longest time between two consecutive runs of ``schedule`` (``"30 2 * * *"`` -> 24 hours).

    Raises ValueError for a schedule that is not five fields, or that never runs (``0 0 31 2 *``).
    """
    fields = schedule.split()
    if len(fields) != len(_BOUNDS):
        raise ValueError(f"{schedule!r} is not a five-field cron schedule such as '30 2 * * *'")
    minute, hour, day_of_month, month, day_of_week = (
        _field(text, low, high) for text, (low, high) in zip(fields, _BOUNDS, strict=True))
    times = sorted(h * 60 + m for h in hour.values for m in minute.values)
    days = _run_days(day_of_month, month, day_of_week)
    if not times or not days:
        raise ValueError(f"{schedule!r} never runs: no day of the calendar matches it")
    within_day = [later - earlier for earlier, later in pairwise(times)]
    # From the last run of a day to the first run of the next day that has runs.
    day_gaps = [later - earlier for earlier, later in zip(days, [*days[1:], days[0] + CYCLE_DAYS], strict=True)]
    between_days = [gap * MINUTES_PER_DAY - (times[-1] - times[0]) for gap in day_gaps]
    return timedelta(minutes=max(within_day + between_days))
