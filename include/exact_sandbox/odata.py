"""The small part of OData v2 that the sandbox needs: `$filter` parsing and Exact's JSON value encoding."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_EPOCH = dt.datetime(1970, 1, 1)


class ODataError(ValueError):
    """A request Exact would answer with 400 and an OData error body."""


def encode_value(value):
    """Encode one property value the way Exact's JSON does.

    Dates become `/Date(ms)/`. The milliseconds carry Dutch wall-clock time written as if it were UTC, which is
    how Exact encodes them (reference §4.6, the interpretation the Airbyte connector uses).
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(AMSTERDAM).replace(tzinfo=None)
        return f"/Date({int((value - _EPOCH).total_seconds() * 1000)})/"
    if isinstance(value, dt.date):
        return f"/Date({int((dt.datetime(value.year, value.month, value.day) - _EPOCH).total_seconds() * 1000)})/"
    return value


def as_text(value):
    """A number, boolean or Int64 the way Exact's OData can also write it: as JSON text ("12.50", "true", "1",
    "123456"). Airbyte's source-exact feeds such values in its tests "as that also is how Exact can return the
    data", and OData v2 JSON writes Edm.Int64 (the Timestamp) as a string. Other values are returned as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}" if round(value, 2) == value else repr(value)
    return value


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: object
    trimmed: bool = False


_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<str>'(?:[^']|'')*')"
    r"|(?P<guid>guid'[0-9a-fA-F-]{36}')"
    r"|(?P<datetime>datetime'[^']+')"
    r"|(?P<num>-?\d+(?:\.\d+)?[LlMmDd]?)"
    r"|(?P<trim>trim\((?P<trimfield>[A-Za-z_][A-Za-z0-9_]*)\))"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_/]*)"
    r"|(?P<paren>[()])"
    r")"
)
OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


def _literal(kind: str, text: str):
    if kind == "str":
        return text[1:-1].replace("''", "'")
    if kind == "guid":
        return text[5:-1].lower()
    if kind == "datetime":
        raw = text[9:-1]
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError as exc:
            raise ODataError(f"Invalid datetime literal: {raw}") from exc
    if kind == "num":
        stripped = text.rstrip("LlMmDd")
        return float(stripped) if "." in stripped else int(stripped)
    raise ODataError(f"Unsupported literal: {text}")


def parse_filter(expr: str) -> list[Comparison]:
    """Parse `A op lit and B op lit ...` (the subset Exact's own docs and clients use)."""
    tokens = _tokenize(expr)
    comparisons: list[Comparison] = []
    i = 0
    while i < len(tokens):
        if tokens[i][0] == "paren":
            i += 1
            continue
        comparisons.append(_comparison(tokens, i))
        i += 3
        while i < len(tokens) and tokens[i][0] == "paren":
            i += 1
        if i < len(tokens):
            conj_kind, conj, _ = tokens[i]
            if conj_kind != "word" or conj != "and":
                raise ODataError(f"Operator '{conj}' is not supported in '$filter'.")
            i += 1
    return comparisons


_Token = tuple[str, str, str | None]  # (kind, text, the field inside trim(...))


def _tokenize(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ODataError(f"Syntax error at position {pos} in '$filter'.")
        kind = m.lastgroup if m.lastgroup != "trimfield" else "trim"
        tokens.append((kind, m.group(kind), m.group("trimfield")))
        pos = m.end()
    return tokens


def _comparison(tokens: list[_Token], i: int) -> Comparison:
    """The comparison `property op literal` that starts at tokens[i]."""
    kind, text, trimfield = tokens[i]
    if kind not in ("word", "trim"):
        raise ODataError("Syntax error in '$filter': expected a property name.")
    if i + 2 >= len(tokens):
        raise ODataError("Syntax error in '$filter': incomplete comparison.")
    op_kind, op, _ = tokens[i + 1]
    if op_kind != "word" or op not in OPS:
        raise ODataError(f"Syntax error in '$filter': unknown operator '{op}'.")
    lit_kind, lit_text, _ = tokens[i + 2]
    field = trimfield if kind == "trim" else text
    return Comparison(field, op, _operand(lit_kind, lit_text), trimmed=kind == "trim")


def _operand(kind: str, text: str) -> object:
    """The right-hand side: a literal, or true, false or null (another property is not supported)."""
    if kind != "word":
        return _literal(kind, text)
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    raise ODataError("Comparing two properties is not supported.")


def _comparable(value):
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(AMSTERDAM).replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return value.lower() if _looks_like_guid(value) else value
    return value


def _looks_like_guid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


def matches(record: dict, comparisons: list[Comparison]) -> bool:
    for c in comparisons:
        actual = record.get(c.field)
        if c.trimmed and isinstance(actual, str):
            actual = actual.strip()
        a, b = _comparable(actual), _comparable(c.value)
        if c.op == "eq":
            ok = a == b
        elif c.op == "ne":
            ok = a != b
        else:
            if a is None or b is None:
                return False
            try:
                ok = {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[c.op]
            except TypeError:
                raise ODataError(f"Operator '{c.op}' incompatible with property '{c.field}'.") from None
        if not ok:
            return False
    return True
