"""One student's late decision: the due time that applies to them, how late they were in
started days (counted on the course's clock, so a daylight-saving change neither adds nor removes
an hour of a day), the bank days spent, the fraction of the total taken off, and the rule in one
sentence. The result records it as `late` (docs/result-schema.md); the penalty applies to the
total only."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from grader.latework.extensions import Extension
from grader.latework.inputs import utc
from grader.latework.policy import LatePolicy
from grader.latework.times import SubmissionTime

NO_TIMES = "no submission time was given: no late penalty"
WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def decide(policy: LatePolicy, when: SubmissionTime | None, extension: Extension | None,
           bank_left: int) -> dict:
    """The `late` record of one result. `bank_left`: bank days not spent on other assignments."""
    due = extension.due if extension else policy.due
    scale = extension.multiplier if extension else 1.0
    record = {"due": due.isoformat(), "submitted": None, "source": when.source if when else "",
              "extension": extension.why if extension else "", "late_seconds": None, "days": 0,
              "bank_used": 0, "bank_left": bank_left if policy.late_day_bank else None, "fraction": 0.0,
              "unknown": False, "policy": policy.digest(), "rule": NO_TIMES}
    if when is None:
        return record
    if when.time is None:
        record["unknown"] = True
        if policy.unknown_late_days is None:
            record["rule"] = "marked late with no time: late by an unknown time, no penalty applied (to check)"
            return record
        days = policy.unknown_late_days
        lead = f"marked late with no time, counted as {_days(days, 'late day')} (the policy's unknown_late_days)"
    else:
        submitted = when.time.astimezone(policy.zone)
        late = (utc(submitted) - utc(due)).total_seconds()
        record.update(submitted=submitted.isoformat(), late_seconds=late)
        if late <= policy.grace_minutes * 60 * scale:
            record["rule"] = ("submitted on time" if late <= 0 else
                              f"submitted {_duration(late)} late, within the {policy.grace_minutes:g}-minute "
                              "grace period: no penalty")
            return record
        days = started_days(due, submitted, scale)
        lead = f"submitted {_duration(late)} late, {_days(days, 'started day')}"
    record["days"] = days
    if policy.max_late_days is not None and days > policy.max_late_days:
        record.update(fraction=1.0, rule=f"{lead}, more than the {policy.max_late_days} allowed: zero")
        return record
    used = min(days, bank_left) if policy.late_day_bank else 0
    charged = days - used
    fraction = round(min(1.0, charged * policy.penalty_per_day), 9)  # 3 × 0.1 is 0.30000000000000004
    record.update(bank_used=used, bank_left=bank_left - used if policy.late_day_bank else None, fraction=fraction)
    parts = []
    if used:
        parts.append(f"{_days(used, 'late day')} spent, {bank_left - used} left")
    if charged and fraction:
        parts.append(f"−{fraction * 100:g} %" if not used else f"{charged} more at −{fraction * 100:g} %")
    elif not used:
        parts.append("no penalty")
    record["rule"] = f"{lead}: {', '.join(parts)}"
    return record


def started_days(due: datetime, submitted: datetime, scale: float = 1.0) -> int:
    """The number of started (scaled) days after `due`: day k ends k×scale days after due on the
    due's own clock, so across a daylight-saving change day 1 still ends at the same wall time."""
    days = 1
    while utc(submitted) > utc(due + timedelta(days=days * scale)):
        days += 1
    return days


def _days(n: int, what: str) -> str:
    return f"{WORDS.get(n, n)} {what}{'s' * (n != 1)}"


def _duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes and hours < 10 else "")
    days, hours = divmod(hours, 24)
    return f"{days} days" + (f" {hours} h" if hours else f" {minutes} min" if minutes else "")
