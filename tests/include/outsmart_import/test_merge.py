"""The merge loader against a real PostgreSQL (the embedded server): what lands in the table."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from include.outsmart_import.enrichment import MergeContext
from include.outsmart_import.import_log import ImportLog
from include.outsmart_import.merge import CategoryLoad
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.schema import ensure_schema
from include.outsmart_import.transforms import Reject

CONTEXT = MergeContext(dt.date(2026, 1, 15))
REL = CATEGORIES["relations"]


def rows(*specs: dict) -> pd.DataFrame:
    base = {c: None for c in REL.table.column_names}
    out = []
    for i, spec in enumerate(specs):
        r = dict(
            base,
            code=f"C{i}",
            name=f"Naam {i}",
            relation_type="customer",
            is_supplier=False,
            is_blocked=False,
            is_active=True,
            exact_id=f"00000000-0000-4000-8000-{i:012d}",
            exact_timestamp=100 + i,
            passes_filter=True,
        )
        r.update(spec)
        out.append(r)
    df = pd.DataFrame(out)
    for col in (
        "code",
        "name",
        "relation_type",
        "email",
        "phone",
        "address_line1",
        "postcode",
        "city",
        "country",
        "vat_number",
        "coc_number",
        "exact_id",
    ):
        df[col] = df[col].astype("string")
    for col in ("is_supplier", "is_blocked", "is_active", "passes_filter"):
        df[col] = df[col].astype("boolean")
    df["exact_timestamp"] = df["exact_timestamp"].astype("Int64")
    return df


@pytest.fixture
def db(target_db):
    with target_db.connect() as conn:
        ensure_schema(conn)
    return target_db


def load(db, frame=None, *, deleted=(), full_derive=False, commit=True, rejects=()):
    with db.connect() as conn:
        with CategoryLoad(conn, REL) as ld:
            if frame is not None:
                ld.stage(frame)
            ld.stage_deleted(list(deleted))
            ld.reject(list(rejects))
            counts = ld.merge(full_derive=full_derive, context=CONTEXT)
            if commit:
                ld.commit()
    return counts


def table(db):
    return {
        r[0]: r[1:]
        for r in db.query(
            "SELECT code, name, email, is_blocked, deleted_at IS NOT NULL, exact_id::text, xmin::text::bigint "
            "FROM outsmart.relations ORDER BY code"
        )
    }


def test_insert_update_unchanged(db):
    c = load(db, rows({}, {}, {}))
    assert (c.inserted, c.updated, c.unchanged) == (3, 0, 0)
    before = table(db)
    c = load(db, rows({"name": "Nieuw"}, {}, {"exact_timestamp": 200}))
    assert (c.inserted, c.updated, c.unchanged) == (0, 1, 2)
    after = table(db)
    assert after["C0"][0] == "Nieuw"
    # Unchanged rows are not rewritten: same row version (xmin); only a Timestamp change is not a change.
    assert after["C1"][-1] == before["C1"][-1]
    assert after["C2"][-1] == before["C2"][-1]


def test_empty_string_null_and_control_safe_text_round_trip(db):
    load(db, rows({"email": "", "name": 'Line\r\nbreak, "quoted"; \\ back', "phone": None}))
    got = db.query("SELECT email, name, phone FROM outsmart.relations")[0]
    assert got == ("", 'Line\r\nbreak, "quoted"; \\ back', None)


def test_filtered_rows_only_update_existing(db):
    load(db, rows({}))
    c = load(db, rows({"is_blocked": True, "passes_filter": False}, {"passes_filter": False}))
    assert (c.inserted, c.updated, c.filtered_out) == (0, 1, 1)
    t = table(db)
    assert set(t) == {"C0"}
    assert t["C0"][2] is True  # flag updated, row kept


def test_soft_delete_respects_timestamps(db):
    load(db, rows({}, {"exact_timestamp": 500}))
    ids = [r[0] for r in db.query("SELECT exact_id::text FROM outsmart.relations ORDER BY code")]
    c = load(db, deleted=[(ids[0], 300), (ids[1], 400)])  # C1 was changed after the deletion record: keep
    assert c.deleted == 1
    t = table(db)
    assert t["C0"][3] is True and t["C1"][3] is False
    c = load(db, rows({"name": "terug"}))  # a soft-deleted row that comes back is revived
    assert table(db)["C0"][3] is False


def test_reconcile_soft_deletes_rows_exact_no_longer_has(db):
    load(db, rows({}, {}, {}))
    frame = rows({}, {})
    c = load(
        db, frame, full_derive=True, rejects=[Reject("C2", "broken", {"ID": "00000000-0000-4000-8000-000000000002"})]
    )
    assert c.deleted == 0  # C2 was seen (rejected, not gone)
    c = load(db, rows({}), full_derive=True)
    assert c.deleted == 2


def test_duplicate_id_in_pages_keeps_highest_timestamp(db):
    frame = pd.concat([rows({"name": "nieuw", "exact_timestamp": 900}), rows({"name": "oud", "exact_timestamp": 800})])
    c = load(db, frame)
    assert c.inserted == 1
    assert table(db)["C0"][0] == "nieuw"


def test_recode_updates_in_place_or_rejects_when_taken(db):
    load(db, rows({}, {}))
    c = load(db, rows({"code": "NIEUW", "exact_timestamp": 700}))
    assert (c.inserted, c.updated, c.rejected) == (0, 1, 0)
    t = table(db)
    assert set(t) == {"NIEUW", "C1"} and t["NIEUW"][4] == "00000000-0000-4000-8000-000000000000"
    c = load(db, rows({"code": "C1", "exact_timestamp": 800}))  # C1 belongs to another Exact record
    assert c.rejected == 1 and "already used" in c.rejects[0].reason
    assert set(table(db)) == {"NIEUW", "C1"}


def test_duplicate_codes_in_exact_are_rejected(db):
    c = load(db, rows({"code": "X"}, {"code": "X"}, {}))
    assert c.inserted == 1 and c.rejected == 2
    assert db.scalar("SELECT count(*) FROM outsmart.import_rejects WHERE reason LIKE 'duplicate code%'") == 2


def test_rollback_leaves_target_and_watermark_untouched(db):
    load(db, rows({}))
    before = table(db)
    with db.connect() as conn, pytest.raises(RuntimeError):
        with CategoryLoad(conn, REL) as ld:
            ld.stage(rows({"name": "half"}, {}))
            ld.cur.execute(
                "INSERT INTO outsmart.import_state (category, stream, landed_seq) VALUES ('relations', 's', 9)"
            )
            ld.merge(full_derive=False, context=CONTEXT)
            raise RuntimeError("killed mid-load")
    assert table(db) == before
    assert db.query("SELECT * FROM outsmart.import_state") == []


def test_import_log_marks_abandoned_runs(db):
    with db.connect() as conn:
        log = ImportLog(conn)
        first = log.start("relations", "r1", full_refresh=False, dry_run=False)
        second = log.start("relations", "r2", full_refresh=False, dry_run=False)
        log.finish(second, "success", fetched=3)
    got = dict(db.query("SELECT id, status FROM outsmart.import_log"))
    assert got == {first: "abandoned", second: "success"}


def test_schema_migration_is_idempotent(db):
    with db.connect() as conn:
        ensure_schema(conn)
        ensure_schema(conn)
    cols = {
        r[0]
        for r in db.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema='outsmart' AND table_name='relations'"
        )
    }
    assert {
        "code",
        "name",
        "relation_type",
        "is_blocked",
        "is_active",
        "email",
        "phone",
        "address_line1",
        "postcode",
        "city",
        "country",
        "vat_number",
        "coc_number",
        "exact_id",
        "exact_timestamp",
        "deleted_at",
        "imported_at",
    } <= cols


# ---- direct mode: the initial load COPYs straight into the empty target ---------------------------------------


def load_pages(db, *pages, deleted=(), commit=True):
    """Stage page by page as the runner does; return the counts and whether the load stayed in direct mode."""
    with db.connect() as conn:
        with CategoryLoad(conn, REL) as ld:
            for page in pages:
                ld.stage(page)
            ld.stage_deleted(list(deleted))
            counts = ld.merge(full_derive=True, context=CONTEXT)
            direct = ld.header.direct
            if commit:
                ld.commit()
    return counts, direct


def test_initial_load_goes_direct_and_counts_like_the_merge(db):
    c, direct = load_pages(
        db,
        rows({}, {}),
        rows(
            {"code": "C2", "exact_id": "00000000-0000-4000-8000-000000000002"},
            {"code": "C3", "exact_id": "00000000-0000-4000-8000-000000000003", "passes_filter": False},
        ),
    )
    assert direct is True
    assert (c.staged, c.inserted, c.updated, c.unchanged, c.filtered_out, c.deleted) == (4, 3, 0, 0, 1, 0)
    assert set(table(db)) == {"C0", "C1", "C2"}
    # The target now has rows: the next load merges through staging.
    c, direct = load_pages(db, rows({"name": "Nieuw"}, {}))
    assert direct is False and (c.inserted, c.updated, c.unchanged) == (0, 1, 1)


def test_direct_load_falls_back_when_a_later_page_repeats_an_id(db):
    c, direct = load_pages(
        db, rows({"name": "oud", "exact_timestamp": 800}, {}), rows({"name": "nieuw", "exact_timestamp": 900})
    )
    assert direct is False  # the repeat was seen before its COPY; the merge kept the newest version
    assert (c.inserted, c.filtered_out) == (2, 0)
    assert table(db)["C0"][0] == "nieuw"


def test_direct_load_drops_a_record_whose_newer_version_is_filtered_out(db):
    # C0 passes on page 1, then comes again, newer, as a type the filters drop: it must not stay loaded.
    c, direct = load_pages(db, rows({}, {}), rows({"exact_timestamp": 900, "passes_filter": False}))
    assert direct is False
    assert (c.inserted, c.filtered_out) == (1, 1)
    assert set(table(db)) == {"C1"}


def test_direct_load_applies_deletions_of_the_same_run(db):
    c, direct = load_pages(
        db,
        rows({}, {"exact_timestamp": 500}),
        deleted=[("00000000-0000-4000-8000-000000000000", 300), ("00000000-0000-4000-8000-000000000001", 400)],
    )
    assert direct is True and c.deleted == 1  # C1 changed after its deletion record: kept
    t = table(db)
    assert t["C0"][3] is True and t["C1"][3] is False


def test_direct_load_rolls_back_to_an_empty_target(db):
    with db.connect() as conn, pytest.raises(RuntimeError):
        with CategoryLoad(conn, REL) as ld:
            ld.stage(rows({}, {}))
            assert ld.header.direct is True
            raise RuntimeError("killed mid-load")
    assert table(db) == {}


def test_direct_load_falls_back_on_duplicate_codes_and_rejects_them(db):
    c, direct = load_pages(
        db, rows({"code": "X"}, {}), rows({"code": "X", "exact_id": "00000000-0000-4000-8000-000000000009"})
    )
    assert direct is False
    assert c.inserted == 1 and c.rejected == 2
    assert set(table(db)) == {"C1"}


def _gid(i):
    return f"00000000-0000-4000-8000-{i:012d}"


SCENARIOS = {
    "plain with tricky text": [
        rows({"email": "", "name": 'A\r\nB "q"; \\'}, {"phone": None}, {"passes_filter": False})
    ],
    "repeat across pages": [rows({}, {}), rows({"name": "nieuwer", "exact_timestamp": 999})],
    "older repeat": [rows({"exact_timestamp": 999}, {}), rows({"name": "ouder", "exact_timestamp": 1})],
    "newer version filtered out": [rows({}, {}), rows({"exact_timestamp": 999, "passes_filter": False})],
    "duplicate code": [rows({"code": "X"}, {}), rows({"code": "X", "exact_id": _gid(9)})],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_direct_and_staged_initial_loads_give_the_same_result(target_db, name, monkeypatch):
    import include.outsmart_import.merge as merge

    results = []
    for force_staging in (False, True):
        with target_db.connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS outsmart CASCADE")
            conn.commit()
            ensure_schema(conn)
        with monkeypatch.context() as m:
            if force_staging:
                m.setattr(merge.TablePart, "start_direct_if_empty", lambda self: None)
            c, direct = load_pages(target_db, *SCENARIOS[name], deleted=[(_gid(1), 10_000)])
        assert direct is False or not force_staging
        got = target_db.query(
            "SELECT code, name, email, phone, is_blocked, exact_id::text, exact_timestamp, deleted_at IS NOT NULL "
            "FROM outsmart.relations ORDER BY code"
        )
        rejects = target_db.query("SELECT record_key, reason FROM outsmart.import_rejects ORDER BY 1, 2")
        results.append(
            (got, rejects, (c.staged, c.inserted, c.updated, c.unchanged, c.filtered_out, c.rejected, c.deleted))
        )
    assert results[0] == results[1]


def test_schema_check_takes_no_table_lock_when_nothing_is_missing(db):
    # A running load holds its target table (a direct COPY holds it for the whole extraction). The migration that
    # every DAG run starts with must not queue behind it: queued, it blocks other loads' reads and can deadlock.
    with db.connect() as load_conn:
        load_conn.execute("LOCK TABLE outsmart.relations IN ROW EXCLUSIVE MODE")
        with db.connect() as conn:
            conn.execute("SET lock_timeout = '2s'")
            ensure_schema(conn)  # raises LockNotAvailable if it asks for a table lock
        load_conn.rollback()


def test_schema_migration_adds_what_is_missing(db):
    with db.connect() as conn:
        conn.execute("ALTER TABLE outsmart.relations DROP COLUMN coc_number")
        conn.execute("DROP INDEX outsmart.relations_exact_id_key")
        conn.commit()
        ensure_schema(conn)
    assert (
        db.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'outsmart' "
            "AND table_name = 'relations' AND column_name = 'coc_number'"
        )
        == 1
    )
    assert (
        db.scalar(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'outsmart' AND indexname = 'relations_exact_id_key'"
        )
        == 1
    )


def test_direct_load_opens_no_subtransactions(db):
    # A savepoint per page would leave a 1,000-page import with 1,000 subtransactions: past 64, PostgreSQL's subxid
    # cache overflows and every other session's snapshots get slower while the import runs.
    pages = [rows({"code": f"P{i}", "exact_id": _gid(1000 + i)}) for i in range(70)]
    with db.connect() as conn, db.connect() as observer:
        with CategoryLoad(conn, REL) as ld:
            for page in pages:
                ld.stage(page)
            assert ld.header.direct is True
            pid = conn.info.backend_pid
            count, overflowed = observer.execute(
                "SELECT x.subxact_count, x.subxact_overflowed FROM pg_stat_get_backend_idset() AS b(id), "
                "LATERAL pg_stat_get_backend_subxact(b.id) AS x WHERE pg_stat_get_backend_pid(b.id) = %s",
                (pid,),
            ).fetchone()
            assert (count, overflowed) == (0, False)
            ld.merge(full_derive=False, context=CONTEXT)
            ld.commit()
    assert len(table(db)) == 70
