"""The ``calendar`` demo service: Alex Morgan's work calendar, plus colleagues' busy times.

Named ``calendar_service`` so it does not shadow the standard library's ``calendar``.

Quirks a model has to get right:

- **start is an ISO 8601 datetime with an offset** (``2025-06-03T14:00:00+02:00`` or ``...Z``).
  "tomorrow at 3" or a naive ``2025-06-03T15:00`` is rejected; the calendar stores and returns UTC.
- **Length is ``duration_minutes``**, not an end time and not hours.
- **attendees are email addresses**, not names: "invite Priya" means ``priya.shah@example.com``.
- **list_events and find_free_slot take a date** (``YYYY-MM-DD``, a UTC day), not a datetime.
- The demo clock is frozen at Monday 2025-06-02 09:00 UTC, so "tomorrow" is 2025-06-03.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import AwareDatetime, BaseModel, Field

from tooltune.demo.db import Database, iso, open_database
from tooltune.demo.tooling import ADDITIVE, IDEMPOTENT_WRITE, READ_ONLY, Email, ToolError, register, tool

OWNER = "alex.morgan@example.com"

INSTRUCTIONS = (
    "Work calendar of Alex Morgan (alex.morgan@example.com). Times are ISO 8601; the calendar "
    "stores and returns UTC. Today is Monday 2025-06-02. Attendees are email addresses."
)

SCHEMA = """
CREATE TABLE people (email TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    start TEXT NOT NULL, end TEXT NOT NULL, location TEXT, status TEXT NOT NULL);
CREATE TABLE attendees (event_id TEXT NOT NULL REFERENCES events (event_id), email TEXT NOT NULL);
CREATE TABLE busy (email TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL);
"""

SLOT_STEP = timedelta(minutes=15)


class Event(BaseModel):
    event_id: str = Field(description="Event id, e.g. 'evt_0001'; pass it to cancel_event.")
    title: str
    start: str = Field(description="Start, ISO 8601 in UTC.")
    end: str = Field(description="End, ISO 8601 in UTC.")
    duration_minutes: int
    attendees: list[str] = Field(description="Attendee email addresses (the owner is always included).")
    location: str | None
    status: Literal["confirmed", "cancelled"]


class CreatedEvent(Event):
    conflicts: list[str] = Field(description="Ids of the owner's confirmed events that overlap this one (the event is created anyway).")


class EventList(BaseModel):
    date: str
    events: list[Event]
    count: int


class FreeSlot(BaseModel):
    start: str = Field(description="Slot start, ISO 8601 in UTC; pass it to create_event.")
    end: str
    duration_minutes: int


Duration = Annotated[int, Field(ge=5, le=480, description="Length in minutes (5-480): a one-hour meeting is 60.")]
Day = Annotated[date, Field(description="Calendar day in UTC, formatted YYYY-MM-DD, e.g. '2025-06-03'.")]
Attendees = Annotated[
    list[Email], Field(max_length=20, description="Email addresses of the people to invite, e.g. ['priya.shah@example.com'].")
]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="UTC time of day, HH:MM (24-hour).")]


class Calendar:
    """The calendar's tools over one SQLite database."""

    def __init__(self, db: Database):
        self.db = db

    @tool("Create event", ADDITIVE)
    def create_event(
        self,
        title: Annotated[str, Field(min_length=1, max_length=200, description="Event title, e.g. 'Design review'.")],
        start: Annotated[AwareDatetime, Field(description=(
            "Start as an ISO 8601 datetime with a UTC offset, e.g. '2025-06-03T14:00:00Z' or "
            "'2025-06-03T16:00:00+02:00'. Datetimes without an offset are rejected."))],
        duration_minutes: Duration,
        attendees: Attendees,
        location: Annotated[str | None, Field(max_length=200, description="Room or video link; omit if none.")] = None,
    ) -> CreatedEvent:
        """Create a confirmed event on the owner's calendar and invite the attendees.

        Overlapping events are allowed (as in real calendars): their ids come back in
        'conflicts'. Use find_free_slot first to avoid them.
        """
        begin = start.astimezone(timezone.utc)
        finish = begin + timedelta(minutes=duration_minutes)
        with self.db.write() as conn:
            conflicts = [r["event_id"] for r in _overlapping(conn, begin, finish)]
            (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            event_id = f"evt_{last + 1:04d}"
            conn.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, 'confirmed')",
                (last + 1, event_id, title, iso(begin), iso(finish), location),
            )
            people = [OWNER, *dict.fromkeys(a for a in attendees if a != OWNER)]
            conn.executemany("INSERT INTO attendees VALUES (?, ?)", [(event_id, p) for p in people])
            return CreatedEvent(**_event(conn, event_id).model_dump(), conflicts=conflicts)

    @tool("List events", READ_ONLY)
    def list_events(self, date: Day) -> EventList:
        """List the owner's confirmed events that start on one UTC day, in start order."""
        day_start = datetime.combine(date, time(), timezone.utc)
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT event_id FROM events WHERE status = 'confirmed' AND start >= ? AND start < ? ORDER BY start, seq",
                (iso(day_start), iso(day_start + timedelta(days=1))),
            ).fetchall()
            events = [_event(conn, r["event_id"]) for r in rows]
        return EventList(date=date.isoformat(), events=events, count=len(events))

    @tool("Cancel event", IDEMPOTENT_WRITE)
    def cancel_event(
        self, event_id: Annotated[str, Field(description="Id of the event to cancel, from list_events or create_event, e.g. 'evt_0001'.")]
    ) -> Event:
        """Cancel an event: it disappears from list_events and frees the time. Cancelling twice is harmless."""
        with self.db.write() as conn:
            _event(conn, event_id)
            conn.execute("UPDATE events SET status = 'cancelled' WHERE event_id = ?", (event_id,))
            return _event(conn, event_id)

    @tool("Find free slot", READ_ONLY)
    def find_free_slot(
        self,
        date: Day,
        duration_minutes: Duration,
        attendees: Attendees = [],  # noqa: B006 - never mutated; the SDK needs a plain default for the schema
        earliest: ClockTime = "09:00",
        latest: ClockTime = "17:00",
    ) -> FreeSlot:
        """Find the earliest slot on a day when the owner and all attendees are free.

        Slots start on the quarter hour and must end by 'latest'. Fails if the day has no such slot:
        try another date or a shorter duration.
        """
        window_start = datetime.combine(date, time.fromisoformat(earliest), timezone.utc)
        window_end = datetime.combine(date, time.fromisoformat(latest), timezone.utc)
        length = timedelta(minutes=duration_minutes)
        with self.db.read() as conn:
            blocks = _busy_blocks(conn, [OWNER, *attendees], window_start, window_end)
        candidate = window_start
        while candidate + length <= window_end:
            clash = next((end for start, end in blocks if start < candidate + length and candidate < end), None)
            if clash is None:
                return FreeSlot(start=iso(candidate), end=iso(candidate + length), duration_minutes=duration_minutes)
            candidate = _round_up(clash)
        raise ToolError(
            f"No free {duration_minutes}-minute slot on {date} between {earliest} and {latest} UTC for "
            f"{', '.join([OWNER, *attendees])}. Try another date or a shorter duration."
        )


def build(data_dir: Path, *, reset: bool = False) -> MCPServer:
    """The calendar MCP server over ``data_dir/calendar.sqlite`` (seeded on first use)."""
    db = open_database(data_dir / "calendar.sqlite", "calendar", SCHEMA, seed, reset=reset)
    return register(MCPServer("calendar", instructions=INSTRUCTIONS), Calendar(db))


def _event(conn: sqlite3.Connection, event_id: str) -> Event:
    row = conn.execute("SELECT * FROM events WHERE event_id = ?", (event_id,)).fetchone()
    if row is None:
        raise ToolError(f"No event with id {event_id!r}. Event ids look like 'evt_0001'; find one with list_events.")
    people = [r["email"] for r in conn.execute("SELECT email FROM attendees WHERE event_id = ? ORDER BY rowid", (event_id,))]
    minutes = int((_parse(row["end"]) - _parse(row["start"])).total_seconds() // 60)
    fields = {k: row[k] for k in row.keys() if k != "seq"}
    return Event(**fields, duration_minutes=minutes, attendees=people)


def _overlapping(conn: sqlite3.Connection, start: datetime, end: datetime) -> list[sqlite3.Row]:
    # ISO strings in UTC with a fixed format compare in time order, so SQL can do the overlap test.
    return conn.execute(
        "SELECT event_id FROM events WHERE status = 'confirmed' AND start < ? AND end > ? ORDER BY start, seq",
        (iso(end), iso(start)),
    ).fetchall()


def _busy_blocks(conn: sqlite3.Connection, people: list[str], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    marks = ",".join("?" * len(people))
    rows = conn.execute(
        f"SELECT e.start, e.end FROM events e JOIN attendees a ON a.event_id = e.event_id "
        f"WHERE e.status = 'confirmed' AND a.email IN ({marks}) AND e.start < ? AND e.end > ? "
        f"UNION SELECT start, end FROM busy WHERE email IN ({marks}) AND start < ? AND end > ?",
        (*people, iso(end), iso(start), *people, iso(end), iso(start)),
    ).fetchall()
    return sorted((_parse(r[0]), _parse(r[1])) for r in rows)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _round_up(moment: datetime) -> datetime:
    extra = (moment - moment.replace(minute=0, second=0, microsecond=0)) % SLOT_STEP
    return moment if not extra else moment + (SLOT_STEP - extra)


# ---------------------------------------------------------------- seed data

_PEOPLE = [
    (OWNER, "Alex Morgan"), ("priya.shah@example.com", "Priya Shah"), ("tom.becker@example.com", "Tom Becker"),
    ("lena.fischer@example.com", "Lena Fischer"), ("sam.okafor@example.com", "Sam Okafor"),
    ("mei.lin@example.com", "Mei Lin"), ("diego.ramos@example.com", "Diego Ramos"), ("nora.berg@example.com", "Nora Berg"),
]

# (day offset from Mon 2 June 2025, start HH:MM UTC, minutes, title, location, attendees besides the owner)
_EVENTS = [
    (0, "09:30", 15, "Daily standup", "Zoom", ["priya.shah@example.com", "tom.becker@example.com", "mei.lin@example.com"]),
    (0, "11:00", 60, "Q2 roadmap review", "Room Atlas", ["lena.fischer@example.com", "diego.ramos@example.com"]),
    (0, "14:00", 30, "1:1 Priya", "Zoom", ["priya.shah@example.com"]),
    (1, "09:30", 15, "Daily standup", "Zoom", ["priya.shah@example.com", "tom.becker@example.com", "mei.lin@example.com"]),
    (1, "10:00", 90, "Payments API design review", "Room Borealis", ["tom.becker@example.com", "sam.okafor@example.com"]),
    (1, "13:00", 60, "Lunch with Nora", "Cafe Lindgren", ["nora.berg@example.com"]),
    (1, "15:30", 45, "Hiring sync", "Zoom", ["lena.fischer@example.com"]),
    (2, "09:30", 15, "Daily standup", "Zoom", ["priya.shah@example.com", "tom.becker@example.com", "mei.lin@example.com"]),
    (2, "12:00", 60, "Customer call: Acme Corp", "Zoom", ["diego.ramos@example.com"]),
    (2, "16:00", 60, "Refund flow retro", "Room Atlas", ["sam.okafor@example.com", "mei.lin@example.com"]),
    (3, "09:30", 15, "Daily standup", "Zoom", ["priya.shah@example.com", "tom.becker@example.com", "mei.lin@example.com"]),
    (3, "10:00", 240, "Quarterly planning offsite", "Harbour Hall", ["lena.fischer@example.com", "diego.ramos@example.com", "nora.berg@example.com"]),
    (4, "09:30", 15, "Daily standup", "Zoom", ["priya.shah@example.com", "tom.becker@example.com", "mei.lin@example.com"]),
    (4, "15:00", 60, "Demo Friday", "Room Atlas", ["priya.shah@example.com", "tom.becker@example.com", "sam.okafor@example.com"]),
    (7, "09:30", 15, "Daily standup", "Zoom", ["priya.shah@example.com", "tom.becker@example.com", "mei.lin@example.com"]),
    (7, "13:00", 60, "Security training", "Room Borealis", []),
]

# Colleagues' commitments that are not on the owner's calendar: (day offset, start, minutes, email).
_BUSY = [
    (1, "09:00", 120, "priya.shah@example.com"), (1, "14:00", 90, "priya.shah@example.com"),
    (1, "11:30", 60, "tom.becker@example.com"), (2, "09:00", 180, "lena.fischer@example.com"),
    (2, "13:00", 120, "sam.okafor@example.com"), (4, "10:00", 240, "mei.lin@example.com"),
]

_MONDAY = date(2025, 6, 2)


def _at(offset: int, clock: str) -> datetime:
    return datetime.combine(_MONDAY + timedelta(days=offset), time.fromisoformat(clock), timezone.utc)


def seed(conn: sqlite3.Connection) -> None:
    """Insert the fixture world: 8 people, two weeks of events, colleagues' busy blocks, one cancelled event."""
    conn.executemany("INSERT INTO people VALUES (?, ?)", _PEOPLE)
    for seq, (offset, clock, minutes, title, location, others) in enumerate(_EVENTS, start=1):
        start = _at(offset, clock)
        event_id = f"evt_{seq:04d}"
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, 'confirmed')",
            (seq, event_id, title, iso(start), iso(start + timedelta(minutes=minutes)), location),
        )
        conn.executemany("INSERT INTO attendees VALUES (?, ?)", [(event_id, p) for p in [OWNER, *others]])
    # One already-cancelled event shows that cancelled events free their time.
    conn.execute("UPDATE events SET status = 'cancelled' WHERE event_id = 'evt_0006'")
    conn.executemany(
        "INSERT INTO busy VALUES (?, ?, ?)",
        [(email, iso(_at(o, c)), iso(_at(o, c) + timedelta(minutes=m))) for o, c, m, email in _BUSY],
    )
