"""The sandbox's OAuth 2.0 server, as Exact Online's (reference §2): the authorize page, codes, and a token chain
per consent.

- `GET /api/oauth2/auth?client_id=…&redirect_uri=…&response_type=code&state=…` serves a login + consent page; its
  form posts back to the same address. "Allow" (with a configured sandbox user's name and password) redirects to
  `redirect_uri?code=…&state=…`, "Deny" to `redirect_uri?error=access_denied&state=…`. An unknown client_id or a
  redirect_uri other than the registered one gets an error page and no redirect (a redirect would hand the code,
  or the user, to an address the app never registered).
- Codes look like Exact's (`!` and `*` in them, so they arrive URL-encoded and must be decoded), are single use
  and live `authorization_code_lifetime` seconds (Exact: about 3 minutes). A refused code exchange is a plain
  400 "Bad Request", which is all Exact says (picqer/exact-php-client README, troubleshooting).
- Every accepted code starts a new chain: the consenting user and their divisions, its own rotating refresh
  token. The preconfigured chain (`initial_refresh_token`, the demo's and most tests') is chain "0" of the
  default user; a configured user with an `initial_refresh_token` has a preconfigured chain of their own.
- A chain is per user, not per division (beyond.md §4.2: "OAuth is per user"): one consent reaches every division
  of its user (a user's `divisions`; none given: every division the sandbox serves), and a refresh rotates the
  refresh token for all of them. A preconfigured chain follows its user's divisions as configured; a consent's
  chain keeps the divisions its user had when they consented (Exact's division scoping on the consent form).
- A consent can be revoked (`/_sandbox/revoke-consent`): its chain's refresh tokens are then refused with the
  invalid_grant body of reference §2.3 (Exact documents no body for a revoked consent; "invalid or empty chainId"
  is the one it gives for a chain it no longer knows). Access tokens already issued stay valid until they expire:
  Exact does not document otherwise, and the import only learns of a revocation at its next refresh anyway.

The mixin holds the OAuth part of SandboxState; it reads the time through `self.now()`, which is the server
module's `_now`, so that a test's fake clock governs codes and chains too.
"""

from __future__ import annotations

import datetime as dt
import html
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

PRECONFIGURED_CHAIN = "0"
DEFAULT_USER = "sandbox@example.nl"
# The sandbox users who can log in on the consent page. `divisions`: those the consent grants (None: every division
# the sandbox serves); optional `current_division` (current/Me's CurrentDivision; default: the first of them),
# `initial_refresh_token` (a preconfigured chain of the user's, as chain "0" is the default user's), `user_id`.
# The default user's ID is the one `current/Me` has always answered.
DEFAULT_USERS: dict[str, dict[str, Any]] = {
    DEFAULT_USER: {
        "password": "sandbox",
        "full_name": "Sandbox Gebruiker",
        "user_id": "00000000-0000-0000-0000-00000000aaaa",
        "divisions": None,
    }
}

Refusal = tuple[str, int, Any, dict[str, str]]  # (stats reason, status, body, headers)
BAD_REQUEST: Refusal = ("", 400, "Bad Request", {})


@dataclass
class Chain:
    """One consent's token chain: exactly one live refresh token; every earlier one is "old"."""

    id: str
    user: str
    divisions: tuple[int, ...]
    refresh_token: str
    refresh_issued_at: float
    old_refresh_tokens: set[str] = field(default_factory=set)
    last_token_issued_at: float | None = None
    revoked: bool = False
    preconfigured: bool = False  # started from a configured first refresh token, not from a consent


@dataclass
class AuthCode:
    user: str
    redirect_uri: str
    issued_at: float
    used: bool = False


def new_code() -> str:
    """A code shaped like Exact's (e.g. `stampNL001.gAAA!IAAA…*…`): `!` and `*` make URL-encoding matter."""
    return f"stampNL001.{secrets.token_urlsafe(12)}!IAAA{secrets.token_urlsafe(24)}*{secrets.token_urlsafe(8)}"


def with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


class OAuthMixin:
    """The OAuth state and answers of SandboxState (which provides config, stats, lock and now())."""

    config: Any
    stats: Any
    access_tokens: dict[str, float]

    def now(self) -> float:
        raise NotImplementedError

    def division_codes(self) -> list[int]:
        raise NotImplementedError

    def _init_oauth(self) -> None:
        c = self.config
        self.chains: dict[str, Chain] = {
            PRECONFIGURED_CHAIN: Chain(
                PRECONFIGURED_CHAIN,
                DEFAULT_USER,
                (c.division,),
                c.initial_refresh_token,
                self.now(),
                preconfigured=True,
            )
        }
        self.codes: dict[str, AuthCode] = {}
        self.access_chain: dict[str, str] = {}  # access token -> chain id
        self._add_preconfigured_chains()

    def _add_preconfigured_chains(self) -> None:
        """A chain for each configured user with an `initial_refresh_token` who has none yet (at the start, and after
        a state file from before the user was configured)."""
        have = {ch.user for ch in self.chains.values() if ch.id == PRECONFIGURED_CHAIN or ch.preconfigured}
        for name, found in (self.config.users or {}).items():
            token = found.get("initial_refresh_token")
            if token and name not in have and name != DEFAULT_USER:
                divisions = self.user(name)["divisions"]
                chain = Chain(self._next_chain_id(), name, divisions, token, self.now(), preconfigured=True)
                self.chains[chain.id] = chain

    def _next_chain_id(self) -> str:
        return str(max((int(i) for i in self.chains if i.isdigit()), default=-1) + 1)

    # ---- users and their consents -----------------------------------------------------------------------------
    def user(self, name: str) -> dict[str, Any]:
        users = self.config.users or DEFAULT_USERS
        found = users.get(name) or DEFAULT_USERS.get(name) or {}
        divisions = found.get("divisions") or self.division_codes()
        user_id = found.get("user_id") or str(uuid.uuid5(uuid.NAMESPACE_URL, "exact-sandbox-user:" + name))
        return {**found, "user_name": name, "divisions": tuple(int(d) for d in divisions), "user_id": user_id}

    def chain_of_access(self, access_token: str) -> Chain | None:
        chain_id = self.access_chain.get(access_token, PRECONFIGURED_CHAIN)
        return self.chains.get(chain_id)

    def divisions_of(self, chain: Chain | None) -> tuple[int, ...]:
        """The divisions a chain may read: its consent's; a preconfigured chain follows its user's as configured."""
        if chain is None:
            chain = self.chains.get(PRECONFIGURED_CHAIN)
        if chain is None or chain.id == PRECONFIGURED_CHAIN or chain.preconfigured:
            return self.user(chain.user if chain else DEFAULT_USER)["divisions"]
        return chain.divisions

    def current_division(self, chain: Chain | None) -> int:
        """current/Me's CurrentDivision: the user's `current_division` if the chain reaches it, else its first."""
        reachable = self.divisions_of(chain)
        wanted = self.user(chain.user if chain else DEFAULT_USER).get("current_division")
        return wanted if wanted in reachable else reachable[0]

    # ---- /api/oauth2/auth -------------------------------------------------------------------------------------
    def authorize(self, method: str, params: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """The authorize endpoint: (status, HTML page, headers); a redirect is a 302 with a Location."""
        c = self.config
        if params.get("client_id") != c.client_id:
            return 400, _page("Unknown application", "<p>There is no app with this client ID.</p>"), {}
        if params.get("redirect_uri") != c.redirect_uri:
            body = "<p>The redirect URI does not match the one registered for this app.</p>"
            return 400, _page("Invalid redirect URI", body), {}
        back = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":  # the implicit flow exists at Exact, not in the sandbox
            return 302, "", {"Location": with_query(c.redirect_uri, {"error": "unsupported_response_type", **back})}
        if method == "GET":
            return 200, _consent_page(params, ""), {}
        action = params.get("action")
        if action == "deny":
            self.stats.token_calls["consent_denied"] += 1
            return 302, "", {"Location": with_query(c.redirect_uri, {"error": "access_denied", **back})}
        if action != "allow":
            return 400, _page("Bad request", "<p>Choose Allow or Deny.</p>"), {}
        users = c.users or DEFAULT_USERS
        user = users.get(params.get("username", ""))
        if user is None or not secrets.compare_digest(str(user.get("password", "")), params.get("password", "")):
            return 200, _consent_page(params, "Invalid user name or password."), {}
        code = new_code()
        now = self.now()
        self.codes = {k: v for k, v in self.codes.items() if now - v.issued_at < 2 * c.authorization_code_lifetime}
        self.codes[code] = AuthCode(params["username"], c.redirect_uri, now)
        self.stats.token_calls["consent_given"] += 1
        return 302, "", {"Location": with_query(c.redirect_uri, {"code": code, **back})}

    # ---- /api/oauth2/token ------------------------------------------------------------------------------------
    def token(self, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """`POST /api/oauth2/token`: (status, body, headers). A refused request is counted by its reason."""
        now = self.now()
        refused = self._refused_client(form)
        chain = None
        if refused is None and form.get("grant_type") == "authorization_code":
            chain, refused = self._chain_for_code(form, now)
        elif refused is None:
            chain, refused = self._chain_for_refresh(form.get("refresh_token", ""), now)
        if refused is not None or chain is None:
            reason, status, body, headers = refused or BAD_REQUEST
            self.stats.token_calls[reason] += 1
            return status, body, headers
        return 200, self._rotate(chain, now), {}

    def _refused_client(self, form: dict[str, str]) -> Refusal | None:
        c = self.config
        if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
            return (
                "invalid_client",
                400,
                {"error": "invalid_client", "error_description": "Invalid client credentials."},
                {},
            )
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            body = {
                "error": "unsupported_grant_type",
                "error_description": f"Grant type {grant!r} is not supported here.",
            }
            return "unsupported_grant", 400, body, {}
        return None

    def _chain_for_code(self, form: dict[str, str], now: float) -> tuple[Chain | None, Refusal | None]:
        """A new chain for a valid code; the code is spent by any exchange, refused or not (single use)."""
        code = self.codes.get(form.get("code", ""))
        if code is None:
            return None, ("code_unknown", *BAD_REQUEST[1:])
        if code.used:
            return None, ("code_reused", *BAD_REQUEST[1:])
        code.used = True
        if now > code.issued_at + self.config.authorization_code_lifetime:
            return None, ("code_expired", *BAD_REQUEST[1:])
        if form.get("redirect_uri") != code.redirect_uri:
            return None, ("redirect_uri_mismatch", *BAD_REQUEST[1:])
        chain = Chain(self._next_chain_id(), code.user, self.user(code.user)["divisions"], "", now)
        self.chains[chain.id] = chain
        return chain, None

    def _find_chain(self, presented: str) -> Chain | None:
        for chain in self.chains.values():
            if presented == chain.refresh_token or presented in chain.old_refresh_tokens:
                return chain
        return None

    def _chain_for_refresh(self, presented: str, now: float) -> tuple[Chain | None, Refusal | None]:
        """Exact's answers to a refresh token that is old, unknown, revoked or expired, or presented within 570 s."""
        c = self.config
        chain = self._find_chain(presented) if presented else None
        if chain is None or chain.revoked:
            body = {
                "error": "invalid_grant",
                "error_description": "Token is not allowed, because of invalid or empty chainId",
            }
            return None, ("consent_revoked" if chain else "invalid_grant", 400, body, {})
        if presented in chain.old_refresh_tokens:
            body = {"error": "unauthorized_client", "error_description": "Old refresh token used."}
            return None, ("old_refresh_token", 401, body, {})
        expires = chain.refresh_issued_at + c.refresh_token_lifetime
        if now > expires:
            at = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%m/%d/%Y %I:%M:%S %p")
            nowtxt = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%m/%d/%Y %I:%M:%S %p")
            body = {
                "error": "invalid_request",
                "error_description": f"The refresh token expired at {at} and it is now {nowtxt}.",
            }
            return None, ("refresh_token_expired", 400, body, {})
        if chain.last_token_issued_at is not None and now - chain.last_token_issued_at < c.min_token_interval:
            body = {"error": "access_denied", "error_description": "Rate limit exceeded: access_token not expired"}
            reason = "TooEarlyToRefreshTokens: a new access token can be requested 570 seconds after the previous one"
            return None, ("too_early", 400, body, {"Reason": reason})
        return chain, None

    def _rotate(self, chain: Chain, now: float) -> dict:
        """Issue a new access token and refresh token; the presented refresh token is old from now on."""
        c = self.config
        if chain.refresh_token:  # a chain a code just started has none yet
            chain.old_refresh_tokens.add(chain.refresh_token)
        chain.refresh_token = "rt-" + secrets.token_urlsafe(24)
        chain.refresh_issued_at = now
        chain.last_token_issued_at = now
        access = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = now + c.access_token_lifetime
        self.access_chain[access] = chain.id
        self.stats.token_calls["ok"] += 1
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": str(int(c.access_token_lifetime))
            if c.access_token_lifetime >= 1
            else str(c.access_token_lifetime),
            "refresh_token": chain.refresh_token,
        }

    # ---- controls -------------------------------------------------------------------------------------------
    def revoke_consent(self, user: str | None = None, chain_id: str | None = None) -> list[str]:
        """The user withdraws the app's access (all their chains), or one chain is revoked. Returns the chain ids."""
        hit = [ch for ch in self.chains.values() if ch.id == chain_id or (user is not None and ch.user == user)]
        for ch in hit:
            ch.revoked = True
        return [ch.id for ch in hit]

    def age_oauth(self, seconds: float) -> None:
        """As if `seconds` had passed for everything OAuth: codes, refresh tokens, the 570 s rule, access tokens."""
        for code in self.codes.values():
            code.issued_at -= seconds
        for ch in self.chains.values():
            ch.refresh_issued_at -= seconds
            if ch.last_token_issued_at is not None:
                ch.last_token_issued_at -= seconds
        for token in self.access_tokens:
            self.access_tokens[token] -= seconds

    def chains_summary(self) -> list[dict]:
        return [
            {
                "id": ch.id,
                "user": ch.user,
                "divisions": list(self.divisions_of(ch)),
                "preconfigured": ch.id == PRECONFIGURED_CHAIN or ch.preconfigured,
                "revoked": ch.revoked,
                "refresh_token": ch.refresh_token,
                "old_count": len(ch.old_refresh_tokens),
                "refresh_issued_at": ch.refresh_issued_at,
                "last_token_issued_at": ch.last_token_issued_at,
            }
            for ch in self.chains.values()
        ]


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} - Exact Online (sandbox)</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _consent_page(params: dict[str, str], message: str) -> str:
    """Login and consent in one form (Exact shows two pages); the request's parameters ride along as hidden fields.
    Every echoed value is escaped; the password is never echoed."""
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(params[name], quote=True)}'>"
        for name in ("client_id", "redirect_uri", "response_type", "state")
        if name in params
    )
    note = f"<p class='error'>{html.escape(message)}</p>" if message else ""
    body = (
        f"{note}<p>The app asks for access to your Exact Online administrations.</p>"
        "<form method='post' action='/api/oauth2/auth'>"
        f"{hidden}"
        "<label>User name <input name='username' autocomplete='username'></label>"
        "<label>Password <input type='password' name='password' autocomplete='current-password'></label>"
        "<button type='submit' name='action' value='allow'>Allow</button>"
        "<button type='submit' name='action' value='deny'>Deny</button>"
        "</form>"
    )
    return _page("Log in and allow access", body)
