"""The import log's own code: what the settings page and the runner ask it, against the real PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from exact_online.exceptions import ExactDailyLimitReached
from include.outsmart_import.import_log import ImportLog
from include.outsmart_import.runner import run_category
from include.outsmart_import.schema import ensure_schema
from include.outsmart_import.settings import ImportSettings


def test_latest_per_category_is_none_before_any_import(target_db):
    with target_db.connect() as conn:
        assert ImportLog(conn).latest_per_category(("status",)) is None


def test_latest_per_category_is_the_newest_row_of_each_category(target_db):
    with target_db.connect() as conn:
        ensure_schema(conn)
        conn.execute(
            "INSERT INTO outsmart.import_log (category, status, started_at, fetched) VALUES "
            "('relations', 'success', now() - interval '2 hours', 10), "
            "('relations', 'failed', now() - interval '1 hour', 0), "
            "('materials', 'success', now() - interval '3 hours', 5), "
            # same start: the later row (higher id) wins
            "('materials', 'dry_run', now() - interval '3 hours', 7)"
        )
        conn.commit()
        latest = ImportLog(conn).latest_per_category(("status", "fetched"))
    assert latest == {"relations": {"status": "failed", "fetched": 0}, "materials": {"status": "dry_run", "fetched": 7}}


class _Exact:
    """An Exact client whose first call raises `exc`."""

    def __init__(self, exc):
        self.exc, self.stats = exc, SimpleNamespace(api_calls=0)

    def sync(self, *args, **kwargs):
        raise self.exc

    deleted = collection = sync


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ExactDailyLimitReached(3_000_001, None), "stopped_daily_limit"),
        # only the hook's exception type is a clean stop, not anything with a similar name
        (type("ExactDailyLimitReached", (Exception,), {})("not the hook's"), "failed"),
        (RuntimeError("boom"), "failed"),
    ],
    ids=["hook-daily-limit", "same-name-other-type", "other-error"],
)
def test_the_runner_recognises_the_daily_limit_by_its_type(target_db, exc, status):
    import psycopg

    settings = ImportSettings.model_validate({"categories": {"relations": {"enabled": True}}})
    with pytest.raises(type(exc)):
        run_category("relations", settings, _Exact(exc), lambda: psycopg.connect(target_db.conninfo))
    with target_db.connect() as conn:
        assert ImportLog(conn).latest_per_category(("status",)) == {"relations": {"status": status}}
