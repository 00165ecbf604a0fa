"""Companies 2..N for the demo and `make airflow --companies N` (#21): each on its own sandbox division (one consent,
the sandbox's default user, reaches them all) and its own OutSmart database beside the first company's, with the
first company's choices."""

from __future__ import annotations

FIRST_DIVISION = 3_000_001  # SandboxConfig().division: the first company's
MAX_COMPANIES = 100


def database_of(number: int) -> str:
    """Company `number`'s database and connection id (number 2 and up; 1 is outsmart_postgres)."""
    return f"outsmart_company{number}"


def with_companies(raw: dict, count: int) -> dict:
    """The settings `raw` (the first company's) with companies 2..count added."""
    choices = {k: raw[k] for k in ("license", "schedule", "categories") if k in raw}
    companies = {
        f"company{i}": {
            "title": f"Company {i}",
            "division": FIRST_DIVISION + i - 1,
            "target_conn_id": database_of(i),
            **choices,
        }
        for i in range(2, count + 1)
    }
    return {**raw, "companies": {**raw.get("companies", {}), **companies}}
