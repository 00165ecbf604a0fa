"""The enrichment interface: rules that fill columns of a category's rows from a second Exact stream.

An enrichment (e.g. Exact's standard sales price of materials and hour types: exact_prices.py) is an object the
registry holds on the category (`Category.enrichment`). Its stream is landed like any other and derived on its own
mark; the merge calls it at three points of the load, in the load's transaction, without knowing what it does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from include.outsmart_import.declarations import Source


@dataclass(frozen=True)
class MergeContext:
    """What the merge's rules are handed rather than look up: the day the run counts as, and the division's default
    currency (None while unknown: then a price's currency is not checked)."""

    today: dt.date
    currency: str | None = None


class Enrichment(Protocol):
    @property
    def source(self) -> Source:
        """Its own Exact stream."""

    @property
    def ddl(self) -> str:
        """Creates its own tables (IF NOT EXISTS); the schema migration runs it when one of them is missing."""

    @property
    def added_columns(self) -> dict[str, dict[str, str]]:
        """Columns added to those tables later: {table: {column: sql type}}."""

    def begin(self, cur) -> None:
        """At the start of the load: its staging tables (TEMP … ON COMMIT DROP)."""

    def stage(self, cur, records: list[dict], deleted: list[tuple[str, int | None]]) -> None:
        """A page of its stream as landed: live records, and (Exact ID, Timestamp) deletions."""

    def before_merge(self, cur) -> None:
        """Before the category's merge: bring its own tables up to date from what was staged."""

    def fill(self, cur, cand_table: str, context: MergeContext) -> None:
        """Fill its columns of the rows about to be written (`cand_table`, before the change filter)."""

    def refresh(self, cur, target: str, cand_table: str, context: MergeContext) -> set:
        """After the upsert: update target rows whose enriched columns changed while the row itself did not.
        Returns those rows' Exact IDs."""

    def forget_timestamps(self, cur) -> None:
        """Exact moved the division and regenerated its Timestamps: clear the ones its own tables keep."""
