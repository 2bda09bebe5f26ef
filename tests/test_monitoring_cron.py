"""The longest interval between two runs of a backup schedule: what PostgresBackupTooOld judges a backup's age by.

Each expectation is worked out by hand from the calendar, as CloudNativePG's ScheduledBackup runs the
schedule (robfig/cron, UTC): the rule's threshold is this interval plus ``backupGrace``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from components.monitoring.cron import longest_interval


@pytest.mark.parametrize(("schedule", "longest"), [
    pytest.param("30 2 * * *", timedelta(hours=24), id="daily"),
    pytest.param("0 */6 * * *", timedelta(hours=6), id="every-6-hours"),
    pytest.param("0 3 * * 0", timedelta(days=7), id="weekly"),
    pytest.param("0 3 * * 7", timedelta(days=7), id="weekly-sunday-as-7"),
    # January to February, and July to August: 31 days
    pytest.param("0 0 1 * *", timedelta(days=31), id="monthly"),
    # the 15th to the 1st after a 31-day month
    pytest.param("0 0 1,15 * *", timedelta(days=17), id="twice-a-month"),
    # 04:15 to 23:15 within a day is longer than 23:15 to 04:15 across midnight
    pytest.param("15 4,23 * * *", timedelta(hours=19), id="twice-a-day-unevenly"),
    # Friday 17:40 to Monday 09:00
    pytest.param("*/20 9-17 * * 1-5", timedelta(days=2, hours=15, minutes=20), id="working-hours"),
    # neither day field starts with *: the 1st of each month or any Sunday, so never more than a week
    pytest.param("0 3 1 * 0", timedelta(days=7), id="day-of-month-or-day-of-week"),
    # `N/step` runs from N to the end of the range: minutes 5, 25 and 45
    pytest.param("5/20 * * * *", timedelta(minutes=20), id="offset-step"),
    # leap days: 29 February 2096 to 29 February 2104, as 2100 is not a leap year
    pytest.param("0 0 29 2 *", timedelta(days=2921), id="leap-day"),
])
def test_the_longest_interval_between_two_runs(schedule, longest):
    assert longest_interval(schedule) == longest


@pytest.mark.parametrize("schedule", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_schedule_that_never_runs_is_refused(schedule):
    with pytest.raises(ValueError, match="never runs"):
        longest_interval(schedule)


def test_a_schedule_without_five_fields_is_refused():
    with pytest.raises(ValueError, match="five-field"):
        longest_interval("0 30 2 * * *")
