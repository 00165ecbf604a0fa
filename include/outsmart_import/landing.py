"""Landing: each Exact stream is read once and kept in Postgres as Exact sent it; categories derive from it.

Why: categories share streams, and a filter keeps nothing of what it dropped. With every record of a stream kept:
- a stream that another category read moments ago is not read again (the reuse window, decided under a lock
  per stream, so that two categories started at once never read the same page twice);
- a category whose settings changed re-derives its table from what has landed, without a full read of Exact.

`outsmart.exact_landed`: one row per (stream, record key): the record as Exact sent it (JSON text, so that a NUL or
any other character Exact sends reaches the transform, which rejects it with a reason), its Timestamp, `deleted_at`
(a tombstone from `sync/Deleted` or a full read that no longer has it), and `landed_seq`, taken from one sequence
each time the row changes. A category remembers, per stream, the highest `landed_seq` it has derived (derive.py).

Each stream is landed in a transaction of its own, under its lock; its watermark (catalogue.py) moves with the
records, so a failed read (a 5xx burst, the daily limit, SIGKILL) leaves both as they were. Records are keyed by
their Exact ID (`catalogue.record_key`); a record without a valid ID is landed under a key derived from its
content, so that the transform still rejects it with its reason.

Where Exact sends one ID in several rows (a goods delivery line split over storage locations: one row per location,
all with the line's ID; `Source.key_fields`), each row is landed under '<ID>/<key field>'. A read that returns some
of an ID's rows returns all its current ones (a change re-sends the line), so the rows of that ID it did not return,
older than those it did, are gone and become tombstones; a deletion in sync/Deleted (by ID) tombstones all of them.

A resync noted by resync.py makes each stream's next refresh a full read. Nothing here knows OutSmart's tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from include.outsmart_import.catalogue import (
    GUID,
    STREAMS,
    Stream,
    all_streams,
    dump_record,
    exact_timestamp,
    record_key,
)
from include.outsmart_import.database import SCHEMA
from include.outsmart_import.resync import DIVISION_MOVED, RESYNCS

LANDED = f"{SCHEMA}.exact_landed"
ANALYZE_AFTER = 5000  # landed rows changed by one read, after which the landed table's statistics are refreshed

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
"""


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


class ExactReader(Protocol):
    """What landing needs of Exact: the hook's reading methods and its call counter."""

    stats: Any  # .api_calls

    def sync(self, endpoint: str, select: list[str], since_timestamp: int) -> Iterator[list[dict]]: ...

    def collection(self, endpoint: str, select: list[str]) -> Iterator[list[dict]]: ...

    def deleted(self, entity_type: int | None, since_timestamp: int) -> Iterator[list[dict]]: ...


@dataclass
class Landing:
    """Refreshes streams in `exact_landed`, each in its own transaction on its own connection.

    `exact`: the hook (or anything with `sync`, `deleted`, `collection` and `stats.api_calls`)."""

    exact: ExactReader
    connect: Callable
    division: int | None = None  # the resyncs of this division make a refresh a full read
    streams: dict[str, Stream] = field(default_factory=all_streams)

    def refresh(
        self, stream: Stream, *, reuse_window: float, full_read: bool = False, derived_at: dt.datetime | None = None
    ) -> StreamRead:
        """Bring `stream` up to date, unless another category read it within `reuse_window` seconds (and `full_read` is
        not asked). `derived_at`: when the asking category last derived its rows; a landed copy it has already seen
        is not reused (a category run twice in a row asks Exact again: someone may have just changed a record).

        The stream's lock is held from the freshness check to the commit: a second category that wants the same
        stream waits, then finds it fresh."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"exact stream {stream.name}",))
                state = self._state(cur, stream, derived_at)
                if state is not None and not full_read and state.reusable(stream, reuse_window):
                    conn.commit()
                    return StreamRead(stream.name, "reused", age_seconds=state.age)
                full = full_read or state is None or state.select_hash != stream.select_hash or stream.mode == "full"
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

    def _state(self, cur, stream: Stream, derived_at: dt.datetime | None) -> _StreamState | None:
        """The stream's row in exact_streams, and whether a resync noticed since its last full read asks for another
        (the latest such reason; DIVISION_MOVED first, its Timestamps being no longer comparable)."""
        cur.execute(
            f"""
            SELECT watermark, select_hash, extract(epoch FROM clock_timestamp() - refreshed_at), refreshed_at > %s,
                   (SELECT reason FROM {RESYNCS} r WHERE r.division = %s AND r.noticed_at > s.full_read_at
                    ORDER BY r.reason = %s DESC, r.noticed_at DESC LIMIT 1)
            FROM {STREAMS} s WHERE stream = %s""",
            (derived_at or dt.datetime.min.replace(tzinfo=dt.UTC), self.division, DIVISION_MOVED, stream.name),
        )
        row = cur.fetchone()
        return None if row is None else _StreamState(row[0], row[1], float(row[2]), bool(row[3]), row[4])

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
                ts = exact_timestamp(rec.get("Timestamp"))
                if ts is not None and (high is None or ts > high):
                    high = ts
                rows.append((record_key(rec, stream.id_field, stream.key_fields), dump_record(rec), ts))
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
                ts = exact_timestamp(rec.get("Timestamp"))
                if ts is not None and (high is None or ts > high):
                    high = ts
                target = by_type.get(exact_timestamp(rec.get("EntityType")) or -1)
                key = rec.get("EntityKey")
                if target and isinstance(key, str) and GUID.fullmatch(key):
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
