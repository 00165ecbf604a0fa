"""The landed copy, read back: what landed in a stream after a category's mark, a page at a time.

The derive (derive.py) feeds these pages to the category's transforms. Where an ID has several rows ('<ID>/<key>':
a goods delivery line per storage location), the category gets one record per ID: its newest current row, with every
current row in `declarations.ROWS`, or, with none left, the ID's deletion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from include.outsmart_import.catalogue import GUID, KEY_SEPARATOR, exact_timestamp
from include.outsmart_import.declarations import ROWS
from include.outsmart_import.landing import LANDED

DERIVE_PAGE = 1000


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
            if several or (deleted and GUID.fullmatch(key)):
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
            newest = max(current, key=lambda r: exact_timestamp(r.get("Timestamp")) or 0)
            page.records.append({**newest, ROWS: current})
        elif GUID.fullmatch(line):
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
    return max(rows, key=lambda r: exact_timestamp(r.get("Timestamp")) or 0)
