"""Connecting the company from the settings page (#20): the connect attempts, the division picker, the connection's
status and disconnecting. The protocol itself is `exact_online.oauth`; this module keeps what lies between the
requests of one attempt.

Why the attempts live in Postgres (the OutSmart database, beside the token chain) and not in the process: the
api-server may run several workers, and the browser's redirect back from Exact can land on another one than the
"Connect" click. A row per attempt holds the sha256 of its `state` (never the state itself), the Airflow user who
started it, an expiry of 10 minutes, and after the code exchange the divisions to pick from. An attempt is used
once: the callback (or the pasted address) marks it before the code is exchanged. What an attempt came to is kept
as a message key and its params (labels.py), not as words: the page reads it in its reader's language, and the
callback page (which no script of the page shows) in the language the attempt was started in.

What goes into the connection's extra: the division picked and who connected it when (names, no token). The token
chain stays in the token store; a stale "First refresh token" is removed from the extra, so that nothing but the
new chain can start the import's chain again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import typing
from dataclasses import dataclass

from exact_online_settings_page.labels import label
from exact_online_settings_page.secret_scrub import EXACT_CONN_ID, TARGET_CONN_ID, scrub

log = logging.getLogger(__name__)

ATTEMPT_SECONDS = 600  # a connect attempt, and the picker after it (the consent's access token lives 10 minutes)
MAX_STATE_CHARS = 256  # new_state() makes 32; anything much longer is not ours
MAX_ADDRESS_BYTES = 4096  # the redirect address is well under 1 KB (code, state)
MAX_DIVISION = 2**31 - 1  # Exact's division codes are 32-bit integers
WARN_DAYS = 7  # warn when the refresh token dies within this many days unused
REFRESH_TOKEN_DAYS = 30
CALLBACK_PATH = "/oauth/callback"
REFUSAL_TEXT = "Exact Online refused the connection"  # how ExactReconnectRequired's message starts

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS exact_online;
CREATE TABLE IF NOT EXISTS exact_online.connect_attempt (
    state_hash   text PRIMARY KEY,
    user_name    text NOT NULL,
    created_at   double precision NOT NULL,
    expires_at   double precision NOT NULL,
    used_at      double precision,
    outcome      text,             -- picking, connected, denied, failed
    message_key  text,             -- what the outcome says (labels.py), in the reader's language
    message_params jsonb,
    language     text,             -- of the page that started it: the callback page's language
    chain_division bigint,
    connected_user jsonb,
    divisions    jsonb
);
-- The table as #20 first made it kept the outcome's message as English words: the key, params and language join it.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'exact_online'
                   AND table_name = 'connect_attempt' AND column_name = 'message_key') THEN
        ALTER TABLE exact_online.connect_attempt ADD COLUMN message_key text, ADD COLUMN message_params jsonb,
            ADD COLUMN language text;
    END IF;
END $$;
-- #21: the attempt connects this connection (NULL: exact_online_default, as every attempt before there were
-- several companies)
ALTER TABLE exact_online.connect_attempt ADD COLUMN IF NOT EXISTS conn_id text;
"""


class ConnectRefused(Exception):
    """A connect request that cannot go on: a message key of labels.py and its params (no secret in them), said in
    the reader's language with `text(lang)`; str() is the English."""

    def __init__(self, key: str, status: int = 400, **params: object):
        super().__init__(label(key, "en", **params))
        self.key, self.params, self.status = key, params, status

    def text(self, lang: str) -> str:
        return label(self.key, lang, **self.params)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _connect():
    from include.outsmart_import.target_db import connector

    return connector(TARGET_CONN_ID)()


def _db(sql: str, params: tuple = (), *, fetch: bool = False) -> list[tuple]:
    """One statement in its own transaction (the table made first): the attempts are small and independent."""
    with _connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('exact_online.connect_attempt schema'))")
        cur.execute(SCHEMA_SQL)
        cur.execute(sql, params)
        rows = cur.fetchall() if fetch else []
        conn.commit()
        return rows


def redirect_uri(base_url: str | None, request_origin: str, prefix: str) -> str:
    """The address Exact sends the browser back to: the connection's extra "redirect_uri" if set (an HTTPS address
    registered for the paste fallback, when Exact's redirect cannot reach this Airflow); else `[api] base_url` (what
    the world knows this Airflow as), else the address the request came in on. It is our app's own path, not the
    UI's /plugin/… route: the UI would load the part after /plugin/exact-online-imports/ into its frame, which is
    not this app."""
    try:
        configured = hook().extras.get("redirect_uri")
    except Exception:
        configured = None  # no usable connection: Connect will say so
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    base = (base_url or request_origin).rstrip("/")
    return base + prefix + CALLBACK_PATH


# ---- the hook and its app ----------------------------------------------------------------------------------------
def hook(conn_id: str = EXACT_CONN_ID):
    """A fresh page hook on the connection (`exact_online_default` unless a company's): exact_connection.page_hook."""
    from exact_online_settings_page.exact_connection import page_hook

    return page_hook(conn_id)


def start(user_name: str, uri: str, lang: str = "en", conn_id: str = EXACT_CONN_ID) -> str:
    """A new attempt for this user (in the page's language `lang`) and connection; the authorize URL to send the
    browser to."""
    from exact_online.oauth import authorize_url, new_state

    h = hook(conn_id)
    try:
        base, client_id = h.api_base, h.connection.login
    except Exception as exc:
        raise ConnectRefused("connection_unusable", 409, conn_id=conn_id, error=scrub(str(exc))) from None
    if not client_id or not h.connection.password:
        raise ConnectRefused("set_client_first", 409, conn_id=conn_id)
    state, now = new_state(), time.time()
    # Attempts are only looked at for 10 minutes; a day later they go (the table stays small).
    _db("DELETE FROM exact_online.connect_attempt WHERE expires_at < %s", (now - 86400,))
    _db(
        "INSERT INTO exact_online.connect_attempt (state_hash, user_name, created_at, expires_at, language, conn_id) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (_hash(state), user_name, now, now + ATTEMPT_SECONDS, lang, None if conn_id == EXACT_CONN_ID else conn_id),
    )
    return authorize_url(base, client_id, uri, state)


def _claim(state: str, user_name: str) -> str:
    """Mark the attempt used (once, by the user who started it, within 10 minutes), or refuse; the connection it
    connects."""
    if not state or len(state) > MAX_STATE_CHARS:
        raise ConnectRefused("not_an_attempt")
    rows = _db(
        "UPDATE exact_online.connect_attempt SET used_at = %s WHERE state_hash = %s AND user_name = %s "
        "AND used_at IS NULL AND expires_at > %s RETURNING coalesce(conn_id, %s)",
        (time.time(), _hash(state), user_name, time.time(), EXACT_CONN_ID),
        fetch=True,
    )
    if not rows:
        raise ConnectRefused("attempt_unknown")
    return str(rows[0][0])


def attempt_language(state: str) -> str | None:
    """The language of the page that started the attempt `state` belongs to (used or not), if there is one."""
    if not state or len(state) > MAX_STATE_CHARS:
        return None
    try:
        rows = _db(
            "SELECT language FROM exact_online.connect_attempt WHERE state_hash = %s", (_hash(state),), fetch=True
        )
    except Exception as exc:  # only the page's language depends on it; completing the attempt will say what is wrong
        log.warning("settings page: connect attempts not readable: %s", type(exc).__name__)
        return None
    return rows[0][0] if rows else None


def _finish(state: str, outcome: str, message_key: str, params: dict | None = None, **fields) -> None:
    fields = {"message_key": message_key, "message_params": params or {}, **fields}
    sets = ", ".join(f"{k} = %s" for k in fields)
    values = tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields.values())
    _db(
        f"UPDATE exact_online.connect_attempt SET outcome = %s, expires_at = %s, {sets} WHERE state_hash = %s",
        (outcome, time.time() + ATTEMPT_SECONDS, *values, _hash(state)),
    )


def complete(address: str, state: str, user_name: str, uri: str) -> str:
    """The redirect came back (callback or pasted address): check the attempt, exchange the code, keep the
    divisions to pick from. Returns the outcome; the message is in the attempt for the page to show."""
    from exact_online.exceptions import ExactConsentDenied, ExactOnlineError
    from exact_online.oauth import code_from_redirect, exchange_code_for_hook

    conn_id = _claim(state, user_name)
    try:
        code = code_from_redirect(address, state)
        consent = exchange_code_for_hook(hook(conn_id), code, uri, may_replace=lambda key: _may_replace(conn_id, key))
        user, divisions = consent.connected_user(), consent.divisions()
    except ExactConsentDenied:
        _finish(state, "denied", "denied")
        return "denied"
    except ExactOnlineError as exc:  # Exact's words (the hook's), behind a lead-in in the reader's language
        _finish(state, "failed", "not_connected_because", {"error": scrub(str(exc))})
        return "failed"
    if conn_id != EXACT_CONN_ID:
        return _company_consent(state, conn_id, consent, user, divisions, user_name)
    _finish(
        state,
        "picking",
        "pick_division",
        chain_division=consent.division,
        connected_user={"full_name": user.full_name, "user_name": user.user_name},
        divisions=[{"code": d.code, "description": d.description} for d in divisions],
    )
    log.info("settings page: %s gave Exact Online's consent; picking a division", user_name)
    return "picking"


def state_of_paste(address: str) -> str:
    """The `state` in a pasted address (the attempt it belongs to)."""
    from urllib.parse import parse_qs, urlsplit

    if len(address.encode()) > MAX_ADDRESS_BYTES:
        raise ConnectRefused("address_too_long", kb=MAX_ADDRESS_BYTES // 1024)
    text = address.strip()
    query = urlsplit(text).query if "?" in text else text
    return (parse_qs(query).get("state") or [""])[0]


# ---- the picker --------------------------------------------------------------------------------------------------
@dataclass
class Attempt:
    state_hash: str
    outcome: str | None
    message_key: str | None
    message_params: dict | None
    chain_division: int | None
    connected_user: dict | None
    divisions: list[dict] | None
    expires_at: float

    def message(self, lang: str) -> str | None:
        """What the attempt came to, in the reader's language."""
        return label(self.message_key, lang, **(self.message_params or {})) if self.message_key else None


def latest_attempt(user_name: str) -> Attempt | None:
    """This user's newest finished attempt for `exact_online_default` within its 10 minutes (what the page's
    connection section reports after the redirect; a company's attempts: latest_company_attempt)."""
    rows = _db(
        "SELECT state_hash, outcome, message_key, message_params, chain_division, connected_user, divisions, "
        "expires_at "
        "FROM exact_online.connect_attempt WHERE user_name = %s AND outcome IS NOT NULL AND expires_at > %s "
        "AND conn_id IS NULL ORDER BY used_at DESC LIMIT 1",
        (user_name, time.time()),
        fetch=True,
    )
    return Attempt(*rows[0]) if rows else None


def pick(user_name: str, division: int, session) -> dict:
    """Move the consent's chain to the division picked and write it in the connection's extra."""
    from exact_online.exceptions import ExactOnlineError
    from exact_online.oauth import ExactApp, ExactConsent

    attempt = latest_attempt(user_name)
    if attempt is None or attempt.outcome != "picking":
        raise ConnectRefused("no_consent_waiting", 409)
    chosen = next((d for d in attempt.divisions or [] if d["code"] == division), None)
    if chosen is None:
        raise ConnectRefused("division_not_in_consent", division=str(division))
    h = hook()
    owners = chain_owners(session, h.connection.login, division, besides=EXACT_CONN_ID)
    if owners:  # moving this consent there would end that connection's (#21)
        raise ConnectRefused("division_is_other_consent", 409, division=str(division), conn_id=owners[0])
    app = ExactApp(h.api_base, h.connection.login, h.connection.password or "", "")
    consent = ExactConsent(app, h.token_store, int(attempt.chain_division or 0), h.get_conn())
    try:
        consent.use_division(division)
    except ExactOnlineError as exc:  # the chain is gone: picked twice at once, or disconnected meanwhile
        raise ConnectRefused("division_not_moved", 409, error=scrub(str(exc))) from None
    who = attempt.connected_user or {}
    write_extra(
        session,
        {
            "division": division,
            "division_description": chosen["description"],
            "connected_as": who,
            "connected_at": dt.datetime.now(dt.UTC).isoformat(),  # to the microsecond: compared with the log
        },
        drop=("refresh_token", "extra__exact_online__refresh_token"),
    )
    said = {"division": str(division), "description": chosen["description"]}
    _db(
        "UPDATE exact_online.connect_attempt SET outcome = 'connected', message_key = 'connected_to_division', "
        "message_params = %s WHERE state_hash = %s",
        (json.dumps(said), attempt.state_hash),
    )
    log.info("settings page: %s connected Exact Online division %s", user_name, division)
    return {"division": division, "description": chosen["description"]}


def write_extra(session, values: dict, drop: tuple[str, ...] = (), conn_id: str = EXACT_CONN_ID) -> None:
    """Set and remove keys of the connection's extra, in the metadata database (Admin → Connections). A connection
    defined elsewhere (an environment variable, a secrets backend) cannot be written from here: say so."""
    from airflow.models import Connection
    from sqlalchemy import select

    conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
    if conn is None:
        raise ConnectRefused("connection_not_in_db", 409, conn_id=conn_id)
    extra = conn.extra_dejson or {}
    for key in drop:
        extra.pop(key, None)
    extra.update(values)
    conn.set_extra(json.dumps(extra))


# ---- status and disconnect ---------------------------------------------------------------------------------------
def _iso(epoch: float | None) -> str | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds") if epoch else None


def _chain(h) -> tuple[int | None, typing.Any]:
    """(division, stored chain record or None) of the connection; (None, None) without a usable division."""
    from exact_online.exceptions import ExactOnlineError

    try:
        division = h.division
        return division, h.token_store.peek(h.chain_key)
    except ExactOnlineError:
        return None, None


def status(now: float | None = None, lang: str = "en") -> dict:
    """What the connection section shows (its warning in `lang`). No token: only names, the division and times.
    A connection that cannot be used is the hook's own words (`problem`)."""
    now = time.time() if now is None else now
    h = hook()
    try:
        extra = h.extras
    except Exception as exc:  # the connection is missing or broken: the section says so
        return {"connected": False, "problem": scrub(str(exc)), "last_refusal": last_refusal(None)}
    division, record = _chain(h)
    out: dict = {"connected": record is not None, "division": division, "problem": None}
    if record is not None:
        expires = record.refresh_obtained_at + REFRESH_TOKEN_DAYS * 86400
        days_left = (expires - now) / 86400
        out.update(
            division_description=extra.get("division_description") or "",
            connected_as=extra.get("connected_as") or None,
            connected_at=extra.get("connected_at"),
            refresh_token_last_used=_iso(record.refresh_obtained_at),
            refresh_token_expires=_iso(expires),
            days_left=round(days_left, 1),
            warning=label("connection_dies", lang, days=round(max(days_left, 0))) if days_left < WARN_DAYS else None,
        )
    out["last_refusal"] = last_refusal(extra.get("connected_at") if record is not None else None)
    return out


def last_refusal(connected_at: str | None) -> dict | None:
    """The newest import that stopped on ExactReconnectRequired (its error text), unless a connect came after it."""
    try:
        with _connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('outsmart.import_log') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute(
                "SELECT category, ended_at, error FROM outsmart.import_log WHERE status = 'failed' "
                "AND error LIKE %s ORDER BY started_at DESC, id DESC LIMIT 1",
                ("%" + REFUSAL_TEXT + "%",),  # the runner writes "ExactReconnectRequired: Exact Online refused …"
            )
            row = cur.fetchone()
    except Exception as exc:
        log.warning("settings page: import log not readable for the last refusal: %s", type(exc).__name__)
        return None
    if row is None:
        return None
    category, ended_at, error = row
    if connected_at and ended_at and ended_at < dt.datetime.fromisoformat(connected_at):
        return None  # reconnected since
    # From Exact's refusal on: the exception's class name in front of it says nothing to the office.
    message = error[error.find(REFUSAL_TEXT) :]
    return {"category": category, "at": ended_at.isoformat() if ended_at else None, "error": scrub(message)}


def disconnect(session, user_name: str) -> None:
    """Discard the stored chain and clear the division (and who connected it) from the connection."""
    h = hook()
    division, record = _chain(h)
    if division is not None:
        with h.token_store.locked(h.chain_key):
            h.token_store.discard(h.chain_key)
    write_extra(
        session,
        {},
        drop=("division", "division_description", "connected_as", "connected_at", "refresh_token"),
    )
    log.info("settings page: %s disconnected Exact Online (division %s)", user_name, division)


# ---- several connections of one app (#21) -------------------------------------------------------------------------
def chain_owners(session, client_id: str, division: int, besides: str) -> list[str]:
    """The connections (other than `besides`) of the app `client_id` whose consent is known by `division`: their
    token chain is `{client_id}/{division}`, the key a consent stored or moved there would take over."""
    from airflow.models import Connection
    from sqlalchemy import select

    from exact_online.hooks.exact_online import _positive_int

    owners = []
    for conn in session.scalars(select(Connection).where(Connection.login == client_id, Connection.conn_id != besides)):
        extra = conn.extra_dejson or {}
        if _positive_int(extra.get("division") or extra.get("extra__exact_online__division")) == division:
            owners.append(conn.conn_id)
    return sorted(owners)


def _may_replace(conn_id: str, chain_key: str) -> bool:
    """A consent may replace the chain under its key only if no other connection's consent is known by it."""
    from airflow.utils.session import create_session

    client_id, _, division = chain_key.rpartition("/")
    with create_session() as session:
        return not chain_owners(session, client_id, int(division), besides=conn_id)


def _company_consent(state: str, conn_id: str, consent, user, divisions, user_name: str) -> str:
    """A company's new consent: its connection is known by the division the chain was stored under (the user's
    current one), and every division the consent reaches is then a company to add through it; no picker here."""
    from airflow.utils.session import create_session

    with create_session() as session:
        write_extra(
            session,
            {
                "division": consent.division,
                "connected_as": {"full_name": user.full_name, "user_name": user.user_name},
                "connected_at": dt.datetime.now(dt.UTC).isoformat(),
            },
            drop=("refresh_token", "extra__exact_online__refresh_token"),
            conn_id=conn_id,
        )
    _finish(
        state,
        "connected",
        "company_consent_connected",
        {"name": user.full_name},
        chain_division=consent.division,
        connected_user={"full_name": user.full_name, "user_name": user.user_name},
        divisions=[{"code": d.code, "description": d.description} for d in divisions],
    )
    log.info("settings page: %s gave Exact Online's consent for connection %s", user_name, conn_id)
    return "connected"


def latest_company_attempt(user_name: str, lang: str = "en") -> dict | None:
    """This user's newest finished attempt for a company's connection within its 10 minutes (its message in
    `lang`)."""
    rows = _db(
        "SELECT conn_id, outcome, message_key, message_params, connected_user FROM exact_online.connect_attempt "
        "WHERE user_name = %s AND outcome IS NOT NULL AND expires_at > %s AND conn_id IS NOT NULL "
        "ORDER BY used_at DESC LIMIT 1",
        (user_name, time.time()),
        fetch=True,
    )
    if not rows:
        return None
    conn_id, outcome, key, params, who = rows[0]
    message = label(key, lang, **(params or {})) if key else None
    return {"conn_id": conn_id, "outcome": outcome, "message": message, "connected_user": who}
