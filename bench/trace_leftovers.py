"""The statement trace of #19, old against new, with the deliberate changes of #19 applied to the old side.

`python -m bench.trace --old c109bee --keep` compares the statement traces of the version before #19 and this tree.
#19 moved the import core into stage modules (which must not change a statement) and, on purpose, removed some
leftovers (which must change exactly these statements). This script rewrites the old trace by those deliberate
changes only, and then requires the two traces to be byte-identical:

1. DDL: each stage now creates its own tables in a script of its own (same tables, other statement boundaries),
   and the second division table `exact_division` is gone: the schema's DDL statements are left out on both sides.
2. Marks: `import_state.watermark` is `landed_seq`, and a mark is named after its stream ('sync' → the category's
   endpoint, 'lines'/a related table's name → its endpoint, 'prices' → the sales item prices).
3. The division's currency: the old price enrichment's own transaction (a lock, `exact_division` read and written)
   is gone on the old side; the new side's one `SELECT currency FROM outsmart.exact_divisions` transaction is left
   out; the price SQL takes the currency as a parameter instead of joining `exact_division`.
   A full refresh of materials or hour types no longer asks system/Divisions again: its import log row counts one
   API call fewer (the old side's `api_calls` of those two full-refresh runs is lowered by one).
4. The fingerprint of materials and hour types names the enrichment by its class now (one full re-derive after an
   upgrade, no Exact call): its value is masked for those two on both sides.

The trace tool's own reading of the tables after the last round is left out (it reads every table, and the tables
are what the deliberate changes renamed; `bench.trace` compares their contents itself).

Usage: python -m bench.trace_leftovers /tmp/trace-XXXX (a work dir kept by `bench.trace --keep`). Exit 0 when
identical after these rewrites; otherwise prints the first differences.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

from include.outsmart_import.registry import CATEGORIES

STATEMENT = re.compile(r"^(s\d+)\|(LOG:  (statement|execute <unnamed>): )")
DDL_MARKERS = ("CREATE TABLE IF NOT EXISTS outsmart.", "CREATE SCHEMA IF NOT EXISTS", "CREATE SEQUENCE IF NOT EXISTS")


def statements(lines: list[str]) -> list[list[str]]:
    """The trace's lines grouped per statement (its text, continuation lines and DETAIL), markers on their own."""
    out: list[list[str]] = []
    for line in lines:
        if line.startswith("-- round") or STATEMENT.match(line) or not out:
            out.append([line])
        else:
            out[-1].append(line)
    return out


def mark_names(category: str) -> dict[str, str]:
    c = CATEGORIES[category]
    names = {"sync": c.source.endpoint}
    for spec in c.dependents:
        names["lines" if spec is c.lines else spec.table.name] = spec.source.endpoint
    if c.enrichment is not None:
        names["prices"] = c.enrichment.source.endpoint
    return names


def _old_marks(text: str, category: str) -> str:
    text = text.replace(
        "INSERT INTO outsmart.import_state (category, stream, watermark) VALUES ($1, $2, $3) ON CONFLICT (category, "
        "stream) DO UPDATE SET watermark = excluded.watermark, updated_at = now()",
        "INSERT INTO outsmart.import_state (category, stream, landed_seq) VALUES ($1, $2, $3) ON CONFLICT (category, "
        "stream) DO UPDATE SET landed_seq = excluded.landed_seq, updated_at = now()",
    )
    text = text.replace("SELECT watermark FROM outsmart.import_state", "SELECT landed_seq FROM outsmart.import_state")
    if "outsmart.import_state" in text:
        for old, new in mark_names(category).items():
            text = text.replace(f"$2 = '{old}'", f"$2 = '{new}'")
    return text


def _old_prices(text: str) -> str:
    if "LEFT JOIN (SELECT max(currency) AS currency FROM outsmart.exact_division) d ON true" not in text:
        return text
    text = re.sub(
        r"s\d+\|\t    LEFT JOIN \(SELECT max\(currency\) AS currency FROM outsmart.exact_division\) d ON true\n",
        "",
        text,
    )
    text = text.replace(
        "AND (p.currency IS NULL OR d.currency IS NULL OR p.currency = d.currency)",
        "AND (p.currency IS NULL OR $2::text IS NULL OR p.currency = $2)",
    )
    return re.sub(r"(DETAIL:  Parameters: \$1 = '[0-9-]+')\n", r"\1, $2 = 'EUR'\n", text)


def normalise(lines: list[str], old: bool) -> list[str]:  # noqa: C901 - one rule per deliberate change, in order
    out: list[str] = []
    category = round_ = ""
    groups = statements(lines)
    skip_session: str | None = None
    for group in groups:
        text = "\n".join(group) + "\n"
        if group[0].startswith("-- round"):
            round_, category = group[0].split()[-2:]
        session = group[0].split("|", 1)[0]
        if any(marker in text for marker in DDL_MARKERS):
            continue
        if (
            "SELECT to_jsonb(r) FROM" in text
            or "FROM information_schema.columns WHERE table_schema = 'outsmart'" in text
        ):
            continue  # the trace tool reading the tables after the last round
        if old and "hashtext('exact division')" in text:
            out.pop() if out and out[-1].endswith("LOG:  statement: BEGIN\n") else None
            skip_session = session
            continue
        if skip_session == session:
            if text.endswith("LOG:  statement: COMMIT\n"):
                skip_session = None
            continue
        if not old and "SELECT currency FROM outsmart.exact_divisions WHERE division" in text:
            out.pop()  # its BEGIN
            skip_session = session
            continue
        if old:
            text = _old_prices(_old_marks(text, category))
            if round_ == "3" and category in ("materials", "hour_types") and "UPDATE outsmart.import_log SET" in text:
                text = re.sub(r"\$8 = '(\d+)'", lambda m: f"$8 = '{int(m[1]) - 1}'", text)
        if category in ("materials", "hour_types") and "outsmart.category_state (category, fingerprint)" in text:
            text = re.sub(r"\$2 = '[0-9a-f]{16}'", "$2 = '<fingerprint>'", text)
        out.append(text)
    return out


def main(workdir: str) -> int:
    work = Path(workdir)
    old = normalise((work / "trace-old.txt").read_text().splitlines(), old=True)
    new = normalise((work / "trace-new.txt").read_text().splitlines(), old=False)
    old_lines, new_lines = "".join(old).splitlines(), "".join(new).splitlines()
    if old_lines == new_lines:
        print(f"after the deliberate changes of #19: identical ({len(old_lines)} lines each)")
        return 0
    diff = list(difflib.unified_diff(old_lines, new_lines, "old (rewritten)", "new", lineterm="", n=2))
    print(f"after the deliberate changes of #19: {sum(1 for d in diff if d[:1] in '+-') - 2} differing lines")
    print("\n".join(diff[:200]))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
