"""Connecting an Exact Online company: Exact's authorization-code flow (reference §2.1), the protocol half of #20.

1. `authorize_url(...)`: where to send the person's browser (`{base}/api/oauth2/auth`); `new_state()` makes the
   `state` to send along and to check when the browser comes back.
2. Exact redirects to `redirect_uri?code=…&state=…` (or `?error=access_denied&state=…`). A page that receives the
   redirect, or a person pasting the address the browser was sent to (the fallback when the redirect URI cannot
   reach Airflow), hands it to `code_from_redirect(...)`: the code, URL-decoded, or a typed error.
3. `exchange_code(...)` trades the code (single use, about 3 minutes) for the first token pair and stores it in the
   token store the hook reads, under the hook's chain key `{client id}/{division}`: from then on the imports live on
   that chain. The returned `ExactConsent` reads the connected user (`current/Me`) and the divisions
   (`system/Divisions`) with the new access token, for a division picker, and moves the chain to the division
   picked (`use_division`).

Nothing here logs or returns a token or the client secret, and no exception text contains one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import requests

from exact_online.exceptions import (
    ExactAuthError,
    ExactCodeRefused,
    ExactConfigError,
    ExactConsentDenied,
    ExactConsentError,
    ExactConsentNoCode,
    ExactConsentStateMismatch,
)
from exact_online.token_store import TokenRecord, TokenStore, seed_hash

if TYPE_CHECKING:
    from exact_online.hooks.exact_online import ExactOnlineHook

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/api/oauth2/auth"
TOKEN_PATH = "/api/oauth2/token"
TIMEOUT = (10, 60)  # (connect, read) seconds for the token endpoint and the two reads
CONNECT_AGAIN = "Start connecting again from the settings page."


@dataclass(frozen=True)
class ExactApp:
    """The app registered in Exact's App Centre, as one country's Exact knows it. The secret is never shown."""

    base_url: str  # e.g. https://start.exactonline.nl (no trailing slash)
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str  # exactly as registered: Exact compares it character for character

    @classmethod
    def from_hook(cls, hook: ExactOnlineHook, redirect_uri: str) -> ExactApp:
        """The app of the hook's connection (Base URL, Client ID, Client secret) with the given redirect URI."""
        conn = hook.connection
        if not conn.login or not conn.password:
            raise ExactConfigError(hook.exact_conn_id, "the Client ID and the Client secret are both needed.")
        return cls(hook.api_base, conn.login, conn.password, redirect_uri)


@dataclass(frozen=True)
class ConnectedUser:
    full_name: str
    user_name: str
    current_division: int | None  # the division last opened in Exact: a default for the picker, never the import's


@dataclass(frozen=True)
class DivisionChoice:
    code: int
    description: str


def new_state() -> str:
    """An unguessable `state` for one connect attempt; keep it (e.g. in the session) to check the redirect."""
    return secrets.token_urlsafe(24)


def authorize_url(base_url: str, client_id: str, redirect_uri: str, state: str, *, force_login: bool = False) -> str:
    """Exact's consent page for the app: `{base}/api/oauth2/auth?client_id=…&redirect_uri=…&response_type=code&
    state=…` (`force_login=1` makes Exact ask for the password even when the browser is logged in)."""
    missing = [name for name, value in (("base_url", base_url), ("client_id", client_id)) if not value]
    missing += [name for name, value in (("redirect_uri", redirect_uri), ("state", state)) if not value]
    if missing:
        raise ValueError(f"authorize_url needs {', '.join(missing)}")
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": state}
    if force_login:
        params["force_login"] = "1"
    return base_url.rstrip("/") + AUTHORIZE_PATH + "?" + urlencode(params)


def code_from_redirect(address: str, expected_state: str) -> str:
    """The authorization code in the address Exact redirected the browser to, URL-decoded (Exact's codes contain
    `!` and `*`, which arrive as `%21` and `%2A`). Checks `state` first: a code that arrives with another state
    must not be used. Raises ExactConsentDenied, ExactConsentStateMismatch or ExactConsentNoCode."""
    text = (address or "").strip()
    query = urlsplit(text).query if "?" in text else text  # the whole address, or only what follows its `?`
    params = parse_qs(query, keep_blank_values=True)  # decodes: %21 -> !
    state = (params.get("state") or [""])[0]
    if not expected_state or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise ExactConsentStateMismatch(
            "This address does not belong to the connect attempt in progress (its state differs): paste the address "
            f"of the last redirect only. {CONNECT_AGAIN}"
        )
    error = (params.get("error") or [""])[0]
    if error == "access_denied":
        raise ExactConsentDenied(
            f"Access was denied on Exact Online's consent page, so nothing was connected. {CONNECT_AGAIN}"
        )
    if error:
        raise ExactConsentNoCode(f"Exact Online answered {error[:60]!r} instead of a code. {CONNECT_AGAIN}")
    code = (params.get("code") or [""])[0]
    if not code:
        raise ExactConsentNoCode(
            "This address holds no authorization code: paste the whole address the browser was sent to after "
            f"'Allow' (it contains '?code='). {CONNECT_AGAIN}"
        )
    return code


def exchange_code(
    app: ExactApp,
    code: str,
    token_store: TokenStore,
    *,
    division: int | None = None,
    supersedes_refresh_token: str = "",
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
    may_replace: Callable[[str], bool] | None = None,
) -> ExactConsent:
    """Trade the code for the first token pair and store it as the chain of `{client id}/{division}` (the hook's
    chain key). Without `division`, the user's current division (`current/Me`) is taken; `use_division` moves the
    chain when the person picks another.

    `supersedes_refresh_token`: the "First refresh token" still in the Airflow connection, if any. The hook starts
    over from that token whenever the stored chain was not started by it (its hash differs); the new chain is marked
    as standing in for it, so that the hook keeps the new chain. A token pasted into the connection later still wins.

    `may_replace(chain_key)`: asked when a chain is already stored under the key; False keeps that chain and raises
    ExactConsentError. Two connections of one app whose consents are known by the same division would otherwise
    share one key, and this consent would silently end the other's chain (the caller knows which connections own
    which key; this module does not).
    """
    session = session or requests.Session()
    pair = _token_pair(app, code, session)
    now = clock()
    if division is None:
        user = _read_me(app, pair["access_token"], session)
        if not user.current_division:
            raise ExactConsentError(f"Exact Online names no current division for {user.user_name}. {CONNECT_AGAIN}")
        division = user.current_division
    consent = ExactConsent(app, token_store, division, session)
    marker = supersedes_refresh_token or "consent:" + pair["refresh_token"]
    record = TokenRecord(
        seed_hash=seed_hash(marker),
        refresh_token=pair["refresh_token"],
        refresh_obtained_at=now,
        access_token=pair["access_token"],
        access_obtained_at=now,
        access_expires_at=now + float(pair.get("expires_in") or 600),
    )
    with token_store.locked(consent.chain_key) as (existing, save):
        if existing is not None and may_replace is not None and not may_replace(consent.chain_key):
            raise ExactConsentError(
                f"Division {division} is already how another connection's consent is known (token chain "
                f"{consent.chain_key}); nothing was stored. Use that connection's consent, or open another division "
                f"in Exact Online first. {CONNECT_AGAIN}"
            )
        save(record)  # replaces whatever chain was there: this consent is the newest word
    log.info("Exact Online connected: token chain %s stored", consent.chain_key)
    return consent


def exchange_code_for_hook(
    hook: ExactOnlineHook, code: str, redirect_uri: str, *, may_replace: Callable[[str], bool] | None = None
) -> ExactConsent:
    """`exchange_code` with everything from the hook's connection: its app, token store, division (if it has one),
    the "First refresh token" the new chain stands in for, and the hook's session and clock."""
    try:
        division: int | None = hook.division
    except ExactConfigError:
        division = None  # no division chosen yet: the user's current one, until the picker says otherwise
    return exchange_code(
        ExactApp.from_hook(hook, redirect_uri),
        code,
        hook.token_store,
        division=division,
        supersedes_refresh_token=hook._seed_refresh_token(),
        session=hook.get_conn(),
        clock=hook._clock,  # the record's times on the clock the hook will judge them by
        may_replace=may_replace,
    )


class ExactConsent:
    """The chain a consent started, as stored: its key and division, and reads with its access token (valid for 10
    minutes after the exchange; later reads belong to the hook, which refreshes)."""

    def __init__(self, app: ExactApp, token_store: TokenStore, division: int, session: requests.Session):
        self._app, self._store, self._session = app, token_store, session
        self.division = division

    @property
    def chain_key(self) -> str:
        return f"{self._app.client_id}/{self.division}"  # the hook's key (ExactOnlineHook.chain_key)

    def __repr__(self) -> str:
        return f"ExactConsent(chain_key={self.chain_key!r})"

    def _access_token(self) -> str:
        record = self._store.peek(self.chain_key)
        if record is None or not record.access_token:
            raise ExactConsentError(f"No token chain is stored for {self.chain_key}. {CONNECT_AGAIN}")
        return record.access_token

    def connected_user(self) -> ConnectedUser:
        """Who gave the consent (`current/Me`: FullName, UserName, CurrentDivision)."""
        return _read_me(self._app, self._access_token(), self._session)

    def divisions(self) -> list[DivisionChoice]:
        """The divisions of the user's licence (`system/Divisions`: Code, Description), every page, Exact's order.
        The division in the URL is this chain's; Exact does not check it (picqer/exact-php-client#470)."""
        url: str | None = f"{self._app.base_url}/api/v1/{self.division}/system/Divisions?" + urlencode(
            {"$select": "Code,Description"}, safe="$,"
        )
        found: list[DivisionChoice] = []
        while url:
            d = _get(self._app, url, self._access_token(), self._session, "system/Divisions")
            found += [DivisionChoice(int(r["Code"]), str(r.get("Description") or "")) for r in _rows(d)]
            nxt = d.get("__next") if isinstance(d, dict) else None
            # `__next` is absolute; keep its path and query but never send the token to another host
            url = self._app.base_url + nxt[nxt.index("/api/") :] if nxt and "/api/" in nxt else None
        return found

    def use_division(self, division: int) -> None:
        """Move the stored chain to `division`'s key (the person picked it): saved there first, then removed from the
        old key, so that never two keys hold the same rotating refresh token for long."""
        if division == self.division:
            return
        with self._store.locked(self.chain_key) as (record, _):
            if record is None:
                raise ExactConsentError(f"No token chain is stored for {self.chain_key}. {CONNECT_AGAIN}")
            with self._store.locked(f"{self._app.client_id}/{division}") as (_, save):
                save(record)
            self._store.discard(self.chain_key)
        self.division = division


def _token_pair(app: ExactApp, code: str, session: requests.Session) -> dict[str, Any]:
    """POST the authorization_code grant; the pair, or a typed error that names no secret. Not retried: the code
    is single use, so a second try after a lost reply would only be refused."""
    form = {
        "grant_type": "authorization_code",
        "code": unquote(code) if "%" in code else code,  # a code copied still encoded; Exact's have no '%'
        "redirect_uri": app.redirect_uri,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    try:
        resp = session.post(app.base_url + TOKEN_PATH, data=form, timeout=TIMEOUT)
    except (requests.ConnectionError, requests.Timeout):
        raise ExactConsentError(
            f"Exact Online's token endpoint could not be reached; the code may be spent. {CONNECT_AGAIN}"
        ) from None
    body = _json(resp)
    if resp.status_code == 200 and body.get("access_token") and body.get("refresh_token"):
        _mask(body["access_token"], body["refresh_token"])
        return body
    if str(body.get("error")) == "invalid_client":
        raise ExactAuthError("Exact Online refused the app's Client ID or Client secret (invalid_client).")
    if resp.status_code == 200:
        raise ExactConsentError(f"Exact Online's token reply holds no token pair. {CONNECT_AGAIN}")
    raise ExactCodeRefused(
        f"Exact Online refused the authorization code ({resp.status_code} {resp.reason}): a code works once, for "
        f"about 3 minutes, and only with the redirect URI it was issued for. {CONNECT_AGAIN}"
    )


def _read_me(app: ExactApp, access_token: str, session: requests.Session) -> ConnectedUser:
    url = app.base_url + "/api/v1/current/Me?" + urlencode({"$select": "FullName,UserName,CurrentDivision"}, safe="$,")
    rows = _rows(_get(app, url, access_token, session, "current/Me"))
    if not rows:
        raise ExactConsentError("Exact Online's current/Me answered without a user.")
    me = rows[0]
    current = me.get("CurrentDivision")
    return ConnectedUser(
        full_name=str(me.get("FullName") or ""),
        user_name=str(me.get("UserName") or ""),
        current_division=int(current) if current not in (None, "") else None,
    )


def _get(app: ExactApp, url: str, access_token: str, session: requests.Session, what: str) -> Any:
    """One GET with the bearer token; the `d` of the answer. Errors name the endpoint and status, not the token."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    try:
        resp = session.get(url, headers=headers, timeout=TIMEOUT)
    except (requests.ConnectionError, requests.Timeout):
        raise ExactConsentError(f"Exact Online could not be reached for {what}; try again.") from None
    if resp.status_code != 200:
        raise ExactConsentError(f"Exact Online answered {resp.status_code} for {what}.")
    return _json(resp).get("d", {})


def _rows(d: Any) -> list[dict]:
    """The records of a `d`: under `results`, or a bare object (clients see both for current/Me)."""
    if isinstance(d, dict) and isinstance(d.get("results"), list):
        return d["results"]
    return [d] if isinstance(d, dict) and d else []


def _json(resp: requests.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:  # Exact's refused code exchange is a plain "Bad Request"
        return {}
    return body if isinstance(body, dict) else {}


def _mask(*values: str) -> None:
    from exact_online.hooks.exact_online import _mask as mask_secret

    for value in values:
        mask_secret(value)
