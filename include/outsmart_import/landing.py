"""The landed copy of Exact: each Exact stream is read once and kept in Postgres, and categories derive from it.

Why: categories share streams (materials and hour types both read the items; the standard sales price and the
price agreements both read the sales item prices; every category read its own slice of `sync/Deleted`), and a
filter keeps nothing of what it dropped. With every record of a stream kept, as Exact sent it:
- a stream that another category read moments ago is not read again (the reuse window, decided under a lock
  per stream, so that two categories started at once never read the same page twice);
- a category whose settings changed re-derives its table from what has landed, without a full read of Exact;
- `sync/Deleted` is one stream for every entity type, read once.

Tables (schema `outsmart`):
- `exact_landed`: one row per (stream, record key): the record as Exact sent it (JSON text, so that a NUL or any
  other character Exact sends reaches the transform, which rejects it with a reason), its Timestamp, `deleted_at`
  (a tombstone from `sync/Deleted` or a full read that no longer has it), and `landed_seq`, taken from one
  sequence each time the row changes. A category remembers, per stream, the highest `landed_seq` it has derived
  (`import_state`), so "what changed since my last run" is `landed_seq > mark`, whoever read it from Exact.
- `exact_streams`: per stream its Exact watermark (highest Timestamp landed), the `$select` it was read with (a
  changed select is read in full again: the landed records lack the new field) and when it was last read.

Each stream is landed in a transaction of its own, under its lock; its watermark moves with the records, so a
failed read (a 5xx burst, the daily limit, SIGKILL) leaves both as they were. The category's own load is the
next transaction: its marks move only when its target commits. Records are keyed by their Exact ID; a record
without a valid ID is landed under a key derived from its content, so that the transform still rejects it with
its reason.

Where Exact sends one ID in several rows (a goods delivery line split over storage locations: one row per location,
all with the line's ID; `Source.key_fields`), each row is landed under '<ID>/<key field>'. A read that returns some
of an ID's rows returns all its current ones (a change re-sends the line), so the rows of that ID it did not return,
older than those it did, are gone and become tombstones; a deletion in sync/Deleted (by ID) tombstones all of them;
and `derive_pages` gives the category one record per ID: its newest row, with every current row in `ROWS`.

Reading everything again (`exact_resyncs`): when Exact moved the division to another database (it regenerates every
Timestamp, so `Timestamp gt <watermark>` finds nothing any more; system/Divisions' DivisionMoveDate says when, asked
at most once a day) or when sync/Deleted went unread for longer than Exact keeps deletions (about two months), the
import notes a resync. Every stream fully read before it is read in full again (a full read tombstones what Exact no
longer has), and every category derived before it re-derives in full (`pending_resync`); after a move, the landed
Timestamps from before it are not compared with Exact's new ones.

The runner calls `Landing.check_resync`, then `Landing.refresh` per stream and then `derive_pages`; nothing here
knows OutSmart's tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from exact_online.exceptions import ExactApiError
from include.outsmart_import.registry import CATEGORIES, Category, Lines, Source

SCHEMA = "outsmart"
LANDED = f"{SCHEMA}.exact_landed"
STREAMS = f"{SCHEMA}.exact_streams"
DIVISIONS = f"{SCHEMA}.exact_divisions"
RESYNCS = f"{SCHEMA}.exact_resyncs"

# Exact keeps sync/Deleted about two months: "the log of records deleted is saved for 2 months" (Exact's doc of
# Sync/Deleted as copied in Pi-Systems/exact-online, Sync/Deleted.php; ELMAS sync_deleted.rb; reference §5.2, §12).
# sync/Deleted unread for longer than this and deletions may be gone before the import saw them; 55 days keeps a
# margin on "about two months" (and on runs that take hours).
DELETION_LOG_DAYS = 55
# DivisionMoveDate (system/Divisions): "Please resync all data when this value changes because value of Timestamp is
# regenerated" (Exact's REST reference, reference §1.3, §5.1, §12). Asked at most this often per division: one call a
# day of its 5,000; a move is noticed within a day, and nothing Exact changed meanwhile is lost (the full read
# that follows returns it).
DIVISION_CHECK_INTERVAL = dt.timedelta(days=1)
DIVISION_MOVED = "division moved"
DELETIONS_EXPIRED = "deletion log expired"

DDL = f"""
CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.exact_landed_seq;
CREATE TABLE IF NOT EXISTS {LANDED} (
    stream          text NOT NULL,
    record_key      text NOT NULL,
    record          text,
    exact_timestamp bigint,
    deleted_at      timestamptz,
    landed_seq      bigint NOT NULL DEFAULT nextval('{SCHEMA}.exact_landed_seq'),
    landed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, record_key)
);
CREATE INDEX IF NOT EXISTS exact_landed_stream_seq ON {LANDED} (stream, landed_seq);
-- The rows of an ID that Exact sends once per storage location ('<ID>/<location>'), found by their ID.
CREATE INDEX IF NOT EXISTS exact_landed_id_rows ON {LANDED} (stream, split_part(record_key, '/', 1))
    WHERE record_key LIKE '%/%';
CREATE TABLE IF NOT EXISTS {STREAMS} (
    stream        text PRIMARY KEY,
    watermark     bigint,
    select_hash   text NOT NULL,
    refreshed_at  timestamptz NOT NULL,
    full_read_at  timestamptz NOT NULL
);
-- Per division: Exact's DivisionMoveDate and default currency as last asked (system/Divisions), and when.
CREATE TABLE IF NOT EXISTS {DIVISIONS} (
    division   bigint PRIMARY KEY,
    move_date  timestamptz,
    currency   text,
    checked_at timestamptz NOT NULL
);
-- Why everything is read again: streams fully read, and categories derived, before noticed_at do it in full.
CREATE TABLE IF NOT EXISTS {RESYNCS} (
    id         bigserial PRIMARY KEY,
    division   bigint NOT NULL,
    reason     text NOT NULL,
    detail     text NOT NULL,
    noticed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS exact_resyncs_division ON {RESYNCS} (division, noticed_at);
"""

# Exact's own `sync/Deleted`: one stream for all entity types; its rows become tombstones in the streams above.
DELETED = "sync/Deleted"
_DELETED_SELECT = ("ID", "EntityKey", "EntityType", "DeletedDate", "Timestamp")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
DERIVE_PAGE = 1000
ANALYZE_AFTER = 5000  # landed rows changed by one read, after which the landed table's statistics are refreshed
KEY_SEPARATOR = "/"  # record_key of a row Exact sends once per key field value: '<ID>/<value>'
# In a record derived from an ID's several rows: all its current rows, as Exact sent them (the record itself is the
# newest of them). Not an Exact field name (Exact's are PascalCase; its own extra is `__metadata`).
ROWS = "__rows"


@dataclass(frozen=True)
class Stream:
    """One Exact endpoint as landed: its `$select` is the union of every category's fields on that endpoint."""

    name: str  # the endpoint, e.g. 'sync/CRM/Accounts'
    mode: str  # 'sync' (Timestamp watermark), 'full' (no sync endpoint: every read is complete), 'deleted'
    select: tuple[str, ...]
    id_field: str = "ID"
    deleted_entity_type: int | None = None
    key_fields: tuple[str, ...] = ()  # Source.key_fields: with the ID, they identify a row

    @property
    def select_hash(self) -> str:
        return hashlib.sha256(",".join(sorted(self.select)).encode()).hexdigest()[:16]


def _sources(category: Category, dependents: tuple[Lines, ...] | None = None) -> list[Source]:
    out = [category.source]
    out += [d.source for d in (category.dependents if dependents is None else dependents)]
    if category.enrich:
        from include.outsmart_import.loader import enrichment_of

        enrichment = enrichment_of(category)
        if enrichment is not None:
            out.append(enrichment.source)
    return out


def all_streams(categories: list[Category] | None = None) -> dict[str, Stream]:
    """Every stream the registry's categories read, each with the union of their `$select`s."""
    categories = categories if categories is not None else list(CATEGORIES.values())
    fields: dict[str, list[str]] = {}
    first: dict[str, Source] = {}
    for category in categories:
        for src in _sources(category):
            other = first.setdefault(src.endpoint, src)
            if (other.mode, other.id_field, other.deleted_entity_type, other.key_fields) != (
                src.mode,
                src.id_field,
                src.deleted_entity_type,
                src.key_fields,
            ):
                raise ValueError(
                    f"{src.endpoint}: categories disagree on its mode, ID field, key fields or deleted entity type"
                )
            fields.setdefault(src.endpoint, []).extend(src.select)
    streams = {
        name: Stream(
            name, src.mode, tuple(dict.fromkeys(fields[name])), src.id_field, src.deleted_entity_type, src.key_fields
        )
        for name, src in first.items()
    }
    streams[DELETED] = Stream(DELETED, "deleted", _DELETED_SELECT)
    return streams


def streams_of(
    category: Category, streams: dict[str, Stream] | None = None, dependents: tuple[Lines, ...] | None = None
) -> list[Stream]:
    """The streams a category derives from, in the order they are refreshed: its own, its dependent tables' (all,
    or those given), its enrichment's, then `sync/Deleted` if any of them has deletions there."""
    streams = streams if streams is not None else all_streams([*CATEGORIES.values(), category])
    own = [streams[s.endpoint] for s in _sources(category, dependents)]
    if any(s.deleted_entity_type is not None for s in own):
        own.append(streams[DELETED])
    return own


@dataclass
class StreamRead:
    """What one refresh of a stream did, for the import log."""

    stream: str
    action: str  # 'read' (changes since the watermark), 'full_read', 'reused' (fresh enough)
    api_calls: int = 0
    records: int = 0  # records Exact sent
    landed: int = 0  # landed rows that changed (new, changed, tombstoned)
    age_seconds: float | None = None  # 'reused': how old the landed copy was
    watermark_before: int | None = None
    watermark_after: int | None = None
    resync: str | None = None  # a full read because of a resync: its reason (DIVISION_MOVED, DELETIONS_EXPIRED)

    def as_log(self) -> dict:
        out = {"stream": self.stream, "action": self.action, "api_calls": self.api_calls}
        if self.action == "reused":
            out["age_seconds"] = round(self.age_seconds or 0.0, 1)
        else:
            out.update(records=self.records, landed=self.landed)
        if self.resync:
            out["resync"] = self.resync
        return out


def record_key(record: dict, id_field: str, key_fields: tuple[str, ...] = ()) -> str:
    """The Exact ID, lowercased, followed by '/<value>' per key field (a goods delivery line's row per storage
    location: '<ID>/<StorageLocation>', '<ID>/' without one); a record without a valid ID gets a key from its
    content (the transform rejects it; landing it keeps that reject visible instead of dropping the record here)."""
    value = record.get(id_field)
    if isinstance(value, str) and _GUID.fullmatch(value):
        parts = [value.lower(), *("" if record.get(f) is None else str(record[f]).strip().lower() for f in key_fields)]
        return KEY_SEPARATOR.join(parts)
    return "invalid:" + hashlib.sha256(_dump(record).encode()).hexdigest()[:32]


def _dump(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _timestamp(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ExactReader(Protocol):
    """What landing needs of Exact: the hook's reading methods and its call counter."""

    stats: Any  # .api_calls

    def sync(self, endpoint: str, select: list[str], since_timestamp: int) -> Iterator[list[dict]]: ...

    def collection(self, endpoint: str, select: list[str]) -> Iterator[list[dict]]: ...

    def deleted(self, entity_type: int | None, since_timestamp: int) -> Iterator[list[dict]]: ...


def division_of(exact) -> int | None:
    """The Exact client's division (the hook's, from its connection); None for a client without one (test fakes)."""
    return getattr(exact, "division", None)


@dataclass
class Landing:
    """Refreshes streams in `exact_landed`, each in its own transaction on its own connection.

    `exact`: the hook (or anything with `sync`, `deleted`, `collection` and `stats.api_calls`)."""

    exact: ExactReader
    connect: Callable
    streams: dict[str, Stream] = field(default_factory=all_streams)

    def refresh(
        self, stream: Stream, *, reuse_window: float, full: bool = False, seen_at: dt.datetime | None = None
    ) -> StreamRead:
        """Bring `stream` up to date, unless another category read it within `reuse_window` seconds (and `full` is
        not asked). `seen_at`: when the asking category last derived its rows; a landed copy it has already seen
        is not reused (a category run twice in a row asks Exact again: someone may have just changed a record).

        The stream's lock is held from the freshness check to the commit: a second category that wants the same
        stream waits, then finds it fresh."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"exact stream {stream.name}",))
                state = self._state(cur, stream, seen_at)
                if state is not None and not full and state.reusable(stream, reuse_window):
                    conn.commit()
                    return StreamRead(stream.name, "reused", age_seconds=state.age)
                full = full or state is None or state.select_hash != stream.select_hash or stream.mode == "full"
                full = full or bool(state and state.resync)
                watermark = None if full or state is None else state.watermark
                read = StreamRead(stream.name, "full_read" if full else "read", watermark_before=watermark)
                read.resync = state.resync if state else None
                calls_before = self.exact.stats.api_calls
                if stream.mode == "deleted":
                    self._land_deletions(cur, stream, watermark, read)
                else:
                    self._land_records(cur, stream, watermark, full, read, moved=read.resync == DIVISION_MOVED)
                read.api_calls = self.exact.stats.api_calls - calls_before
                if read.landed >= ANALYZE_AFTER:
                    # Fresh statistics for the derive that follows: with none, Postgres took 100k new rows for a
                    # few hundred and sorted all of them for every page instead of walking (stream, landed_seq).
                    cur.execute(f"ANALYZE {LANDED}")
                # The moment the read ended (not the transaction's start, before the lock wait and the reading):
                # a category that derives after it has seen it.
                cur.execute(
                    f"INSERT INTO {STREAMS} (stream, watermark, select_hash, refreshed_at, full_read_at) "
                    f"VALUES (%s, %s, %s, clock_timestamp(), clock_timestamp()) ON CONFLICT (stream) DO UPDATE SET "
                    f"watermark = excluded.watermark, select_hash = excluded.select_hash, "
                    f"refreshed_at = clock_timestamp(), "
                    f"full_read_at = CASE WHEN %s THEN clock_timestamp() ELSE {STREAMS}.full_read_at END",
                    (stream.name, read.watermark_after, stream.select_hash, full),
                )
            conn.commit()
            return read
        finally:
            conn.rollback()  # a no-op after the commit; a failed read leaves records and watermark as they were
            conn.close()

    @property
    def division(self) -> int | None:
        return division_of(self.exact)

    def _state(self, cur, stream: Stream, seen_at: dt.datetime | None) -> _StreamState | None:
        """The stream's row in exact_streams, and whether a resync noticed since its last full read asks for another
        (the latest such reason; DIVISION_MOVED first, its Timestamps being no longer comparable)."""
        cur.execute(
            f"""
            SELECT watermark, select_hash, extract(epoch FROM clock_timestamp() - refreshed_at), refreshed_at > %s,
                   (SELECT reason FROM {RESYNCS} r WHERE r.division = %s AND r.noticed_at > s.full_read_at
                    ORDER BY r.reason = %s DESC, r.noticed_at DESC LIMIT 1)
            FROM {STREAMS} s WHERE stream = %s""",
            (seen_at or dt.datetime.min.replace(tzinfo=dt.UTC), self.division, DIVISION_MOVED, stream.name),
        )
        row = cur.fetchone()
        return None if row is None else _StreamState(row[0], row[1], float(row[2]), bool(row[3]), row[4])

    # ---- a resync: Exact moved the division, or sync/Deleted went unread longer than Exact keeps it -------------
    def check_resync(self) -> str | None:
        """Before the category's streams are refreshed: note a resync if Exact moved the division since it was last
        asked (system/Divisions, at most once per DIVISION_CHECK_INTERVAL) or if sync/Deleted was last read more than
        DELETION_LOG_DAYS ago. Returns a note for the import log if system/Divisions could not be asked."""
        division = self.division
        if division is None:
            return None
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"exact division {division}",))
                _check_deletion_log(cur, division)
                note = self._check_division_move(cur, division)
            conn.commit()
            return note
        finally:
            conn.rollback()
            conn.close()

    def _check_division_move(self, cur, division: int) -> str | None:
        cur.execute(
            f"SELECT move_date, checked_at > now() - %s FROM {DIVISIONS} WHERE division = %s",
            (DIVISION_CHECK_INTERVAL, division),
        )
        known = cur.fetchone()
        ask = getattr(self.exact, "division_details", None)
        if (known is not None and known[1]) or ask is None:
            return None
        note, currency = None, None
        try:
            details = ask()
            moved_on = exact_moment(details.get("DivisionMoveDate")) if details else None
            currency = (details or {}).get("Currency")
        except (ExactApiError, ValueError) as exc:  # a 4xx is never retried: asked again after the interval
            note = f"Could not ask Exact whether division {division} was moved (system/Divisions: {exc}); asked again "
            note += "in a day."
            moved_on = known[0] if known else None
        if moved_on is not None and (moved_on != known[0] if known else _read_before(cur, moved_on)):
            cur.execute(
                f"INSERT INTO {RESYNCS} (division, reason, detail) VALUES (%s, %s, %s)",
                (division, DIVISION_MOVED, _moved_detail(division, moved_on)),
            )
        cur.execute(
            f"INSERT INTO {DIVISIONS} (division, move_date, currency, checked_at) VALUES (%s, %s, %s, now()) "
            f"ON CONFLICT (division) DO UPDATE SET move_date = excluded.move_date, "
            f"currency = coalesce(excluded.currency, {DIVISIONS}.currency), checked_at = now()",
            (division, moved_on, currency),
        )
        return note

    # ---- records ----------------------------------------------------------------------------------------------
    def _pages(self, stream: Stream, watermark: int | None) -> Iterator[list[dict]]:
        if stream.mode == "sync":
            return self.exact.sync(stream.name, list(stream.select), watermark or 1)
        return self.exact.collection(stream.name, list(stream.select))

    def _land_records(
        self, cur, stream: Stream, watermark: int | None, full: bool, read: StreamRead, *, moved: bool = False
    ) -> None:
        """Land what Exact sends. `moved`: the first full read after Exact moved the division, whose Timestamps are
        new: it replaces the landed versions whatever their (old) Timestamps say."""
        cur.execute(
            "CREATE TEMP TABLE landing_stg (record_key text NOT NULL, record text NOT NULL, exact_timestamp bigint) "
            "ON COMMIT DROP"
        )
        high = watermark
        for page in self._pages(stream, watermark):
            read.records += len(page)
            rows = []
            for rec in page:
                rec = {k: v for k, v in rec.items() if k != "__metadata"}
                ts = _timestamp(rec.get("Timestamp"))
                if ts is not None and (high is None or ts > high):
                    high = ts
                rows.append((record_key(rec, stream.id_field, stream.key_fields), _dump(rec), ts))
            with cur.copy("COPY landing_stg (record_key, record, exact_timestamp) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        read.watermark_after = high
        # Newest version per key (a page can repeat a record); an older version never overwrites a newer one (nor
        # revives a row whose ID sync/Deleted deleted later, where an ID has several rows).
        cur.execute(
            f"""
            INSERT INTO {LANDED} AS t (stream, record_key, record, exact_timestamp)
            SELECT DISTINCT ON (record_key) %(stream)s, record_key, record, exact_timestamp FROM landing_stg s
            {_NOT_DELETED_LATER if stream.key_fields and not moved else ""}
            ORDER BY record_key, exact_timestamp DESC NULLS LAST
            ON CONFLICT (stream, record_key) DO UPDATE SET record = excluded.record,
                exact_timestamp = excluded.exact_timestamp, deleted_at = NULL,
                landed_seq = nextval('{SCHEMA}.exact_landed_seq'), landed_at = now()
            WHERE (t.record IS DISTINCT FROM excluded.record OR t.deleted_at IS NOT NULL)
              AND (%(moved)s OR t.exact_timestamp IS NULL OR excluded.exact_timestamp IS NULL
                   OR excluded.exact_timestamp >= t.exact_timestamp)""",
            {"stream": stream.name, "moved": moved},
        )
        read.landed = cur.rowcount
        if stream.key_fields and not full:
            read.landed += _tombstone_rows_not_resent(cur, stream.name)
        if full:
            # A complete read: what it did not return is gone from Exact.
            cur.execute(
                f"""
                UPDATE {LANDED} t SET deleted_at = now(), landed_seq = nextval('{SCHEMA}.exact_landed_seq'),
                    landed_at = now()
                WHERE t.stream = %s AND t.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM landing_stg s WHERE s.record_key = t.record_key)""",
                (stream.name,),
            )
            read.landed += cur.rowcount

    # ---- sync/Deleted -----------------------------------------------------------------------------------------
    def _land_deletions(self, cur, stream: Stream, watermark: int | None, read: StreamRead) -> None:
        """Deletions of every entity type since the watermark, as tombstones in the streams they belong to (also
        for records not landed yet: a late, older version of the record then cannot revive it)."""
        by_type = {s.deleted_entity_type: s.name for s in self.streams.values() if s.deleted_entity_type is not None}
        cur.execute(
            "CREATE TEMP TABLE landing_deleted (stream text NOT NULL, record_key text NOT NULL, "
            "exact_timestamp bigint) ON COMMIT DROP"
        )
        high = watermark
        for page in self.exact.deleted(None, watermark or 1):
            read.records += len(page)
            rows = []
            for rec in page:
                ts = _timestamp(rec.get("Timestamp"))
                if ts is not None and (high is None or ts > high):
                    high = ts
                target = by_type.get(_timestamp(rec.get("EntityType")) or -1)
                key = rec.get("EntityKey")
                if target and isinstance(key, str) and _GUID.fullmatch(key):
                    rows.append((target, key.lower(), ts))
            with cur.copy("COPY landing_deleted (stream, record_key, exact_timestamp) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        read.watermark_after = high
        cur.execute("SELECT DISTINCT stream FROM landing_deleted ORDER BY 1")
        for (target,) in cur.fetchall():
            # The target stream's own lock: its rows change under one writer at a time, so that `landed_seq`
            # rises in commit order within a stream (a category's mark never passes an uncommitted row).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"exact stream {target}",))
        cur.execute(f"""
            INSERT INTO {LANDED} AS t (stream, record_key, record, exact_timestamp, deleted_at)
            SELECT DISTINCT ON (stream, record_key) stream, record_key, NULL, exact_timestamp, now()
            FROM landing_deleted ORDER BY stream, record_key, exact_timestamp DESC NULLS LAST
            ON CONFLICT (stream, record_key) DO UPDATE SET deleted_at = now(),
                exact_timestamp = excluded.exact_timestamp,
                landed_seq = nextval('{SCHEMA}.exact_landed_seq'), landed_at = now()
            WHERE t.deleted_at IS NULL
              AND (t.exact_timestamp IS NULL OR excluded.exact_timestamp IS NULL
                   OR t.exact_timestamp <= excluded.exact_timestamp)""")
        read.landed = cur.rowcount
        # Where an ID has several rows (one per storage location), the deletion of the ID is that of every row.
        cur.execute(f"""
            UPDATE {LANDED} t SET deleted_at = now(), exact_timestamp = d.ts,
                landed_seq = nextval('{SCHEMA}.exact_landed_seq'), landed_at = now()
            FROM (SELECT stream, record_key, max(exact_timestamp) AS ts FROM landing_deleted GROUP BY 1, 2) d
            WHERE t.stream = d.stream AND t.record_key LIKE '%/%' AND split_part(t.record_key, '/', 1) = d.record_key
              AND t.deleted_at IS NULL AND (t.exact_timestamp IS NULL OR d.ts IS NULL OR t.exact_timestamp <= d.ts)""")
        read.landed += cur.rowcount


@dataclass(frozen=True)
class _StreamState:
    watermark: int | None
    select_hash: str
    age: float  # seconds since it was last read
    newer_than_seen: bool  # read after the asking category last derived
    resync: str | None  # a resync noticed since its last full read: its reason

    def reusable(self, stream: Stream, reuse_window: float) -> bool:
        """Read within the window with this select, after the asking category last derived, and no resync due."""
        fresh = self.select_hash == stream.select_hash and self.age < reuse_window
        return fresh and self.newer_than_seen and not self.resync


def _check_deletion_log(cur, division: int) -> None:
    """sync/Deleted last read more than DELETION_LOG_DAYS ago: Exact may have purged deletions the import never saw.
    Noted once (until sync/Deleted is read again)."""
    cur.execute(
        f"SELECT extract(epoch FROM now() - s.refreshed_at) / 86400, EXISTS (SELECT 1 FROM {RESYNCS} r "
        f"WHERE r.division = %s AND r.reason = %s AND r.noticed_at > s.refreshed_at) "
        f"FROM {STREAMS} s WHERE stream = %s",
        (division, DELETIONS_EXPIRED, DELETED),
    )
    row = cur.fetchone()
    if row is None or float(row[0]) <= DELETION_LOG_DAYS or row[1]:
        return
    detail = (
        f"sync/Deleted was last read {int(row[0])} days ago and Exact keeps deletions about two months: every Exact "
        f"stream is read in full again and every category re-derives in full, soft-deleting what Exact no longer has."
    )
    cur.execute(
        f"INSERT INTO {RESYNCS} (division, reason, detail) VALUES (%s, %s, %s)", (division, DELETIONS_EXPIRED, detail)
    )


def _read_before(cur, moved_on: dt.datetime) -> bool:
    """The first time a division's DivisionMoveDate is seen, there is nothing to compare it with: was any stream last
    read in full before the move? A day's margin, because Exact does not say how precise the date is."""
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {STREAMS} WHERE full_read_at < %s)", (moved_on + dt.timedelta(days=1),))
    return bool(cur.fetchone()[0])


def _moved_detail(division: int, moved_on: dt.datetime) -> str:
    return (
        f"Exact moved division {division} to another database (DivisionMoveDate {moved_on:%Y-%m-%d %H:%M} UTC), which "
        f"regenerates every Timestamp: every Exact stream is read in full again and every category re-derives in full."
    )


def exact_moment(value) -> dt.datetime | None:
    """An Exact `/Date(ms)/` as a point in time (Amsterdam wall clock, as the transforms read it); None if empty."""
    if value in (None, ""):
        return None
    import pandas as pd

    from include.outsmart_import.transforms import exact_datetime_utc

    values, invalid = exact_datetime_utc(pd.Series([value], dtype="object"))
    if bool(invalid.iloc[0]) or pd.isna(values.iloc[0]):
        raise ValueError(f"not an Exact date: {value!r}")
    return values.iloc[0].to_pydatetime()


@dataclass(frozen=True)
class Resync:
    """What the category has to catch up on since it last derived: a full derive, and why."""

    reason: str  # DIVISION_MOVED if any of them was a move, else the latest reason
    notes: str  # their details, for the import log
    moved: bool  # Exact regenerated the Timestamps: the category's own ones no longer compare with Exact's


def pending_resync(conn, division: int | None, derived_at: dt.datetime | None) -> Resync | None:
    """The resyncs of `division` noticed after the category last derived (`derived_at`; None: never derived, so its
    first derive is full anyway, from streams landed since)."""
    if division is None or derived_at is None:
        return None
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT reason, detail FROM {RESYNCS} WHERE division = %s AND noticed_at > %s ORDER BY noticed_at",
            (division, derived_at),
        )
        rows = cur.fetchall()
    conn.commit()
    if not rows:
        return None
    moved = any(reason == DIVISION_MOVED for reason, _ in rows)
    notes = " ".join(dict.fromkeys(detail for _, detail in rows))
    return Resync(DIVISION_MOVED if moved else rows[-1][0], notes, moved)


# The row of an ID with several rows is not landed if sync/Deleted deleted the ID after this version of the row.
_NOT_DELETED_LATER = f"""
            WHERE NOT EXISTS (SELECT 1 FROM {LANDED} d WHERE d.stream = %(stream)s
                                AND d.record_key = split_part(s.record_key, '/', 1) AND d.deleted_at IS NOT NULL
                                AND d.exact_timestamp > s.exact_timestamp)"""


def _tombstone_rows_not_resent(cur, stream: str) -> int:
    """Where an ID has several rows: a read that returned some of them returned all its current ones (Exact re-sends
    a changed line's rows), so the rows of that ID it did not return, older than those it did, are gone."""
    cur.execute(
        f"""
        UPDATE {LANDED} t SET deleted_at = now(), landed_seq = nextval('{SCHEMA}.exact_landed_seq'), landed_at = now()
        FROM (SELECT split_part(record_key, '/', 1) AS id, max(exact_timestamp) AS ts FROM landing_stg
              WHERE record_key LIKE '%%/%%' GROUP BY 1) s
        WHERE t.stream = %s AND t.record_key LIKE '%%/%%' AND split_part(t.record_key, '/', 1) = s.id
          AND t.deleted_at IS NULL AND (t.exact_timestamp IS NULL OR t.exact_timestamp < s.ts)
          AND NOT EXISTS (SELECT 1 FROM landing_stg x WHERE x.record_key = t.record_key)""",
        (stream,),
    )
    return cur.rowcount


@dataclass
class LandedPage:
    records: list[dict]  # live records, as Exact sent them
    deleted: list[tuple[str, int | None]]  # (Exact ID, Timestamp) of records deleted in Exact
    high: int  # the highest landed_seq of the page


def derive_pages(cur, stream: str, after: int, page_size: int = DERIVE_PAGE) -> Iterator[LandedPage]:
    """The landed rows of `stream` with `landed_seq > after`, in `landed_seq` order, a page at a time (keyset
    pagination on the (stream, landed_seq) index: no server-side cursor to keep open between the page's COPYs).

    Where an ID has several rows ('<ID>/<location>'), a change to any of them gives the ID's record as it is now:
    its newest current row with all current rows in `ROWS`, or, with none left, the ID's deletion."""
    while True:
        cur.execute(
            f"SELECT record_key, record, exact_timestamp, deleted_at IS NOT NULL, landed_seq FROM {LANDED} "
            f"WHERE stream = %s AND landed_seq > %s ORDER BY landed_seq LIMIT %s",
            (stream, after, page_size),
        )
        rows = cur.fetchall()
        if not rows:
            return
        page = LandedPage([], [], rows[-1][4])
        ids: dict[str, int | None] = {}  # IDs to derive from their rows: the highest Timestamp of their changes
        for key, record, ts, deleted, _ in rows:
            line, several, _ = key.partition(KEY_SEPARATOR)
            if several or (deleted and _GUID.fullmatch(key)):
                # A deleted ID may still have rows (landed under '<ID>/...' after the select gained a key field).
                ids[line] = max((t for t in (ids.get(line), ts) if t is not None), default=None)
            elif not deleted and record is not None:
                page.records.append(json.loads(record))
        if ids:
            _records_of_ids(cur, stream, ids, page)
        yield page
        after = page.high
        if len(rows) < page_size:
            return


def _records_of_ids(cur, stream: str, ids: dict[str, int | None], page: LandedPage) -> None:
    """Each ID's record from its current rows (newest first, all in ROWS); an ID without any is deleted."""
    cur.execute(
        f"SELECT split_part(record_key, '/', 1), record FROM {LANDED} WHERE stream = %s AND record_key LIKE '%%/%%' "
        f"AND split_part(record_key, '/', 1) = ANY(%s) AND deleted_at IS NULL AND record IS NOT NULL "
        f"ORDER BY record_key",
        (stream, list(ids)),
    )
    rows_of: dict[str, list[dict]] = {}
    for line, record in cur.fetchall():
        rows_of.setdefault(line, []).append(json.loads(record))
    for line, ts in ids.items():
        current = rows_of.get(line)
        if current:
            newest = max(current, key=lambda r: _timestamp(r.get("Timestamp")) or 0)
            page.records.append({**newest, ROWS: current})
        elif _GUID.fullmatch(line):
            page.deleted.append((line, ts))


def landed_children(cur, stream: str, field: str, parents: list[str]) -> list[dict]:
    """The live landed records of `stream` whose `field` is one of `parents` (GUIDs), whatever their landed_seq.
    Matched on the record's text first (the records are JSON text: no cast that a stray character could break),
    then exactly."""
    if not parents:
        return []
    wanted = {p.lower() for p in parents}
    cur.execute(
        f"SELECT record_key, record FROM {LANDED} WHERE stream = %s AND deleted_at IS NULL AND record ILIKE ANY(%s) "
        f"ORDER BY record_key",
        (stream, [f'%"{field}":"{p}"%' for p in wanted]),
    )
    by_id: dict[str, list[dict]] = {}
    split = False
    for key, record in cur.fetchall():
        rec = json.loads(record)
        if str(rec.get(field) or "").lower() in wanted:
            split = split or "/" in key
            by_id.setdefault(key.split("/", 1)[0], []).append(rec)
    if not split:
        return [rows[0] for rows in by_id.values()]
    # A stream landed per part of a record (a delivery line per storage location): one record per ID, as
    # `derive_pages` gives it: its newest row, with every current row in ROWS.
    return [{**_newest(rows), ROWS: rows} for rows in by_id.values()]


def _newest(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: _timestamp(r.get("Timestamp")) or 0)


def stream_ages(cur) -> dict[str, dt.datetime]:
    """When each landed stream was last read from Exact (for the settings page and the demo)."""
    cur.execute(f"SELECT stream, refreshed_at FROM {STREAMS}")
    return dict(cur.fetchall())
