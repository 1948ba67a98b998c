"""The contact-pressure check (触达频控): before every send, one decision per customer across
all channels — not merged away into another customer, consent for the channel and purpose,
frequency caps per day and week, the WeCom monthly mass-message limit, quiet hours in the
tenant's time zone — and the slots a sent message takes. Caps count per person: a
survivor's counts include what the customers merged into it received (`per_person`).

A capped message takes numbered slots (`2026-11-23#1`, `2026-W48#2`, `2026-11#1`); the store
holds them unique per customer and channel, so two senders that read the same counts cannot
both take the last slot: one wins, the other re-reads. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

from services.reach.domain.channels import Channel, Purpose, Recipient


class Cap(BaseModel):
    per_day: int = Field(1, ge=0, le=100)
    per_week: int = Field(3, ge=0, le=500)


def default_caps() -> dict[Channel, Cap]:
    return {channel: Cap() for channel in Channel}


class Policy(BaseModel):
    """A tenant's contact rules. Caps and quiet hours apply to marketing only."""

    time_zone: str = "Asia/Shanghai"
    quiet_start: time = time(21, 0)
    quiet_end: time = time(9, 0)
    caps: dict[Channel, Cap] = Field(default_factory=default_caps)
    #: WeCom lets a customer receive this many mass messages from one brand a month.
    wecom_monthly_mass: int = Field(4, ge=0, le=31)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def cap(self, channel: Channel) -> Cap:
        return self.caps.get(channel, Cap())


@dataclass(frozen=True)
class Counts:
    """Capped messages a customer already has on one channel in the current windows."""

    day: int = 0
    week: int = 0
    month_mass: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.day + other.day, self.week + other.week, self.month_mass + other.month_mass
        )


def per_person(counts: dict[str, Counts], merged: dict[str, list[str]]) -> dict[str, Counts]:
    """Each customer's counts with those of the customers merged into them added: a cap is
    on how often a person is contacted, whatever id reached them."""
    return {
        customer: sum(
            (counts.get(c, Counts()) for c in [customer, *merged.get(customer, [])]), Counts()
        )
        for customer in counts.keys() | merged.keys()
    }


@dataclass(frozen=True)
class Windows:
    """The tenant-local calendar windows `at` falls in."""

    day: str
    week: str
    month: str


@dataclass(frozen=True)
class Slots:
    day: str
    week: str
    #: Only WeCom mass messages take a month slot.
    month: str | None = None


@dataclass(frozen=True)
class Send:
    slots: Slots | None


@dataclass(frozen=True)
class Defer:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Suppress:
    reason: str


Decision = Send | Defer | Suppress


@dataclass(frozen=True)
class Ask:
    """What is being sent, as the check sees it."""

    channel: Channel
    purpose: Purpose
    recipient: Recipient = Recipient.CUSTOMER
    #: A campaign's message to many (a mass message, for WeCom's monthly limit).
    mass: bool = False


def windows(policy: Policy, at: datetime) -> Windows:
    local = at.astimezone(ZoneInfo(policy.time_zone))
    year, week, _ = local.isocalendar()
    return Windows(
        day=local.date().isoformat(), week=f"{year}-W{week:02d}", month=local.strftime("%Y-%m")
    )


#: The reason a message to a customer merged into another is refused: the same person is
#: reached as the survivor, so the duplicate would be contacted twice.
MERGED = "merged"


def decide(
    ask: Ask,
    policy: Policy,
    *,
    consented: bool,
    counts: Counts,
    now: datetime,
    merged: bool = False,
) -> Decision:
    """Send (with the slots to take), defer past quiet hours, or suppress with a reason."""
    if ask.recipient is Recipient.ADVISOR:
        return Send(slots=None)
    if merged:
        return Suppress(MERGED)
    if not consented:
        return Suppress(f"no_consent:{ask.channel}:{ask.purpose}")
    if ask.purpose is Purpose.SERVICE:
        return Send(slots=None)
    quiet_until = quiet_hours_end(policy, now)
    if quiet_until is not None:
        return Defer(until=quiet_until, reason="quiet_hours")
    return _capped(ask, policy, counts, windows(policy, now))


def _capped(ask: Ask, policy: Policy, counts: Counts, w: Windows) -> Decision:
    cap = policy.cap(ask.channel)
    if counts.day >= cap.per_day:
        return Suppress("frequency_cap_day")
    if counts.week >= cap.per_week:
        return Suppress("frequency_cap_week")
    month = None
    if ask.channel is Channel.WECHAT and ask.mass:
        if counts.month_mass >= policy.wecom_monthly_mass:
            return Suppress("wecom_monthly_mass_limit")
        month = f"{w.month}#{counts.month_mass + 1}"
    return Send(
        Slots(day=f"{w.day}#{counts.day + 1}", week=f"{w.week}#{counts.week + 1}", month=month)
    )


def quiet_hours_end(policy: Policy, now: datetime) -> datetime | None:
    """When the quiet hours `now` falls in end (UTC), or None outside them. The window may
    span midnight (21:00-09:00) or not (13:00-14:00); equal ends mean no quiet hours."""
    zone = ZoneInfo(policy.time_zone)
    local = now.astimezone(zone)
    start, end, clock = policy.quiet_start, policy.quiet_end, local.timetz().replace(tzinfo=None)
    if start == end:
        return None
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)
