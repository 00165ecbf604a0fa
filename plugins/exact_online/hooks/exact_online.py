"""ExactOnlineHook: the Exact Online REST protocol, on Airflow's BaseHook with a requests session of its own.

It knows auth (OAuth2 with rotating refresh tokens), paging (`__next`), limits (the six `X-RateLimit-*` headers,
429, the 10-errors-per-hour rule) and the Sync API. It knows nothing about what the records are used for.

Connection `exact_online_default`, of type "Exact Online" (`exact_online`, see provider_info.py) or plain http:
host = base URL (e.g. https://start.exactonline.nl), login = client id, password = client secret,
extra = {"division": 123, "refresh_token": "..."}; optional extras: "timeout" (seconds), "token_refresh_margin"
(default 30), "token_min_interval" (default 570), "max_attempts" (default 6), "backoff_seconds" (default 2),
"token_store_conn_id" (a Postgres connection). Every extra is also read as `extra__exact_online__<name>`, the
spelling of connections saved by the Airflow 2 UI.

Why BaseHook and not the HTTP provider's HttpHook: HttpHook's offer is `run` (one request, its own retries) on a
session that sends the login and password as Basic auth and every extra as a header. Exact needs none of that: its
calls carry a bearer token from a rotating OAuth chain, the client secret goes only to the token endpoint, the
extras are this hook's configuration (one of them a refresh token), and retries must follow Exact's limits. So the
hook stands on BaseHook, as providers with their own protocol do, and its session sends only what Exact needs.

Retries of transient errors (5xx, dropped connections) back off exponentially from "backoff_seconds" with equal
jitter; waits for a rate-limit reset end at the reset Exact announced, plus a small spread (see `_backoff`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import requests
import tenacity
from airflow.sdk import BaseHook

from exact_online.exceptions import (
    ExactApiError,
    ExactAuthError,
    ExactConfigError,
    ExactDailyLimitReached,
    ExactOnlineError,
    ExactReconnectRequired,
    ExactTransientError,
)
from exact_online.provider_info import CONNECTION_TYPE, HOOK_NAME
from exact_online.token_store import PostgresTokenStore, TokenRecord, TokenStore, seed_hash
from exact_online.webhooks import SUBSCRIPTIONS_ENDPOINT

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from exact_online.rate_budget import PostgresRateBudget

log = logging.getLogger(__name__)

REFRESH_TOKEN_LIFETIME = 30 * 86400  # Exact: an unused refresh token dies after 30 days
MAX_BACKOFF_SECONDS = 60.0  # the longest wait between two tries after a transient error
# A wait for a rate-limit reset (a 429, or headers saying the minute's budget is spent) ends at the reset Exact
# announced plus at most this much. Not the transient backoff's jitter: waking before the reset only meets another
# 429, and waking much later wastes a window that is known to be open. The spread only keeps the processes that
# share the division (the other DAGs, a manual run) from all calling in the same instant of the new window; a
# quarter second is small against a 60 s window and about the clock difference with Exact (hence the 0.05 s
# margin on top of the reset as well).
RESET_SPREAD_SECONDS = 0.25
# Where the jitter comes from by default: the OS, so that processes forked from one parent never draw the same
# sequence. Tests inject a seeded `rng` instead.
_SYSTEM_RANDOM = random.SystemRandom()
GUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _mask(value: str | None) -> None:
    """Register a value with Airflow's secrets masker, so that no log line shows it."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(value)
    except Exception:  # outside a task (plain scripts, unit tests) masking is best effort
        pass


@dataclass
class RateLimitState:
    """What the last response's `X-RateLimit-*` headers said (reset values are epoch milliseconds)."""

    daily_limit: int | None = None
    daily_remaining: int | None = None
    daily_reset_ms: int | None = None
    minutely_limit: int | None = None
    minutely_remaining: int | None = None
    minutely_reset_ms: int | None = None

    def update(self, headers) -> None:
        def num(name):
            v = headers.get(name)
            try:
                return int(float(v)) if v not in (None, "") else None
            except ValueError:
                return None

        for attr, name in (
            ("daily_limit", "X-RateLimit-Limit"),
            ("daily_remaining", "X-RateLimit-Remaining"),
            ("daily_reset_ms", "X-RateLimit-Reset"),
            ("minutely_limit", "X-RateLimit-Minutely-Limit"),
            ("minutely_remaining", "X-RateLimit-Minutely-Remaining"),
            ("minutely_reset_ms", "X-RateLimit-Minutely-Reset"),
        ):
            value = num(name)
            if value is not None:
                setattr(self, attr, value)


@dataclass
class CallStats:
    api_calls: int = 0  # every HTTP request to a division endpoint, retries included
    token_calls: int = 0
    retries: int = 0
    rate_limit_sleeps: int = 0
    seconds_waited_for_limits: float = 0.0
    http_seconds: float = 0.0


def _positive_int(value: Any) -> int | None:
    """123, 123.0 or "123" as 123; None for anything else (True, 12.5, "12a", 0): a division is never guessed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` (an answer of Exact's, for an error message) without any of `secrets` in it, should Exact echo one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (ExactTransientError, requests.ConnectionError, requests.Timeout))


class ExactOnlineHook(BaseHook):
    conn_name_attr = "exact_conn_id"
    default_conn_name = "exact_online_default"
    # The connection type registered by provider_info.py; the hook reads http connections just as well, because it
    # only uses host (schema, port), login, password and extra, which both types have.
    conn_type = CONNECTION_TYPE
    hook_name = HOOK_NAME
    # Where the Airflow 2 UI saved a connection type's own fields in the extra (the Airflow 3 UI uses plain names).
    LEGACY_EXTRA_PREFIX = f"extra__{CONNECTION_TYPE}__"

    def __init__(
        self,
        exact_conn_id: str = default_conn_name,
        *,
        token_store: TokenStore | None = None,
        rate_budget: PostgresRateBudget | None = None,
        division: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = _SYSTEM_RANDOM.random,
        max_attempts: int | None = None,
        logger_name: str | None = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.exact_conn_id = exact_conn_id
        self._token_store = token_store
        self.rate_budget = rate_budget  # a PostgresRateBudget shares the division's budget across processes
        # Another division reached through the connection's consent (one Exact user may open many): its API calls
        # and call budget are that division's, the token chain stays the consent's (see `chain_key`).
        self._division = division
        self._sleep, self._clock = sleep, clock
        self._rng = rng  # a float in [0, 1) per call: the jitter of backoffs and the spread of reset waits
        # Tries per call, over the connection's "max_attempts": a caller a person waits on (the settings page) gives
        # up after a few seconds where an import rides out a minute of a restarting Exact.
        self._max_attempts = max_attempts
        self._session: requests.Session | None = None
        self._conn: Connection | None = None
        self._access: TokenRecord | None = None
        self.rate = RateLimitState()
        self.stats = CallStats()
        self.refresh_token_expires_at: float | None = None

    # ---- connection and session -------------------------------------------------------------------------------
    @property
    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.get_connection(self.exact_conn_id)
            _mask(self._conn.password)
            extras = self._conn.extra_dejson or {}
            for key in ("refresh_token", self.LEGACY_EXTRA_PREFIX + "refresh_token"):
                if isinstance(extras.get(key), str):
                    _mask(extras[key])
        return self._conn

    @property
    def extras(self) -> dict:
        return self.connection.extra_dejson or {}

    def _extra_item(self, name: str) -> tuple[str, Any]:
        """(key, value) of extra `name`: the plain key first, then the Airflow 2 UI's `extra__exact_online__<name>`.

        A plain key that is null or empty counts as absent: the Airflow 3 form writes `"refresh_token": null` for a
        field left empty, which must not hide a value under the old spelling.
        """
        extras = self.extras
        for key in (name, self.LEGACY_EXTRA_PREFIX + name):
            if extras.get(key) not in (None, ""):
                return key, extras[key]
        return name, None

    def _extra(self, name: str, default: Any = None) -> Any:
        value = self._extra_item(name)[1]
        return default if value is None else value

    @property
    def division(self) -> int:
        """The division the calls go to: the one this hook was made for, else the connection's."""
        return self._division if self._division is not None else self.consent_division

    @property
    def consent_division(self) -> int:
        """The connection's own division (its extra): the key of its consent's token chain."""
        key, value = self._extra_item("division")
        if value is None:
            raise ExactConfigError(
                self.exact_conn_id,
                "no 'division' in its extra (the \"Division\" field of an Exact Online connection). Set it to the "
                "number of the Exact administration to import, e.g. 123456.",
            )
        division = _positive_int(value)
        if division is None:
            raise ExactConfigError(
                self.exact_conn_id,
                f"extra {key!r} must be the Exact administration number, a positive whole number such as 123456, "
                f"not {repr(value)[:40]}.",
            )
        return division

    def _option(self, name: str, default: float) -> float:
        key, value = self._extra_item(name)
        if value is None:
            return float(default)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ExactConfigError(
                self.exact_conn_id,
                f"extra {key!r} must be a number, not {repr(value)[:40]}; remove it for the default {default}.",
            ) from None

    def _seed_refresh_token(self) -> str:
        """The refresh token the operator put in the connection ("" if none): it starts or restarts the chain."""
        key, value = self._extra_item("refresh_token")
        if value is None:
            return ""
        if not isinstance(value, str):
            # Never show the value: it may be a token that was merely mistyped.
            raise ExactConfigError(
                self.exact_conn_id,
                f'extra {key!r} (the "First refresh token" field) must be a text; paste the refresh token as is.',
            )
        return value  # not stripped: its hash identifies the chain it started

    @property
    def token_store(self) -> TokenStore:
        if self._token_store is None:
            conn_id = self._extra("token_store_conn_id")
            if not conn_id:
                raise ExactAuthError(
                    f"No token store: pass token_store= to ExactOnlineHook or set 'token_store_conn_id' in the extra "
                    f"of connection {self.exact_conn_id!r}."
                )
            self._token_store = PostgresTokenStore.from_airflow_connection(conn_id)
        return self._token_store

    @property
    def chain_key(self) -> str:
        # One chain per app (client id) and consent, known by the consent's division: every division the consent
        # reaches shares it, because each refresh rotates the refresh token of all of them.
        return f"{self.connection.login}/{self.consent_division}"

    def get_conn(self) -> requests.Session:
        """The requests session for Exact, made once: JSON accepted, and nothing from the connection in it.

        Credentials go with each request that needs them (the bearer token on API calls, client id and secret in
        the token request's form), so neither the secret nor an extra (one is a refresh token) can leave with an
        unrelated call, as a Basic auth header or an extra sent as a header would."""
        if self._session is None:
            session = requests.Session()
            session.headers.update({"Accept": "application/json", "Prefer": "return=representation"})
            self._session = session
        return self._session

    @property
    def api_base(self) -> str:
        """The connection's base URL without a trailing slash: host as given when it has a scheme, else the
        connection's schema (or https: Exact speaks nothing else) before it; the port, if any, after it."""
        conn = self.connection
        host = (conn.host or "").strip().rstrip("/")
        if not host:
            raise ExactConfigError(
                self.exact_conn_id,
                'no host. Set "Base URL" to the Exact site of your country, e.g. https://start.exactonline.nl.',
            )
        base = host if "://" in host else f"{conn.schema or 'https'}://{host}"
        return f"{base}:{conn.port}" if conn.port else base

    # ---- OAuth ------------------------------------------------------------------------------------------------
    def get_access_token(self) -> str:
        """A valid access token, refreshing the chain under the store's lock when it is about to expire."""
        margin = self._option("token_refresh_margin", 30)
        now = self._clock()
        access = self._access
        if access and access.access_token and (access.access_expires_at or 0) - margin > now:
            return access.access_token
        seed_token = self._seed_refresh_token()
        current_seed = seed_hash(seed_token) if seed_token else None
        peeked = self.token_store.peek(self.chain_key)
        if peeked and self._usable(peeked, current_seed, margin, now):
            return self._use(peeked)
        with self.token_store.locked(self.chain_key) as (record, save):
            now = self._clock()
            if record is None or (current_seed and record.seed_hash != current_seed):
                # First run, or the operator put a newly authorised refresh token in the connection.
                if not seed_token:
                    raise ExactConfigError(
                        self.exact_conn_id,
                        "no 'refresh_token' in its extra (the \"First refresh token\" field of an Exact Online "
                        "connection) and no token chain is stored yet. Authorise the app in Exact Online "
                        "(authorization-code flow), then put the refresh token it gives in that field.",
                    )
                record = TokenRecord(seed_hash=seed_hash(seed_token), refresh_token=seed_token, refresh_obtained_at=now)
            if self._usable(record, current_seed, margin, now):
                return self._use(record)  # a peer refreshed while we waited for the lock
            min_interval = self._option("token_min_interval", 570)
            if record.access_obtained_at is not None:
                too_early_by = record.access_obtained_at + min_interval - now
                if too_early_by > 0:
                    if record.access_token and (record.access_expires_at or 0) > now + 1:
                        return self._use(record)  # still valid: use it rather than break the 570 s rule
                    self._sleep(too_early_by)
            new = self._refresh(record)
            save(new)  # committed before the new tokens are used
            return self._use(new)

    def _usable(self, rec: TokenRecord, current_seed: str | None, margin: float, now: float) -> bool:
        return bool(
            rec.access_token
            and (current_seed is None or rec.seed_hash == current_seed)
            and (rec.access_expires_at or 0) - margin > now
        )

    def _use(self, record: TokenRecord) -> str:
        # Only records with an access token get here: usable ones, a still valid one, or a fresh refresh.
        assert record.access_token is not None
        _mask(record.access_token)
        _mask(record.refresh_token)
        self._access = record
        self.refresh_token_expires_at = record.refresh_obtained_at + REFRESH_TOKEN_LIFETIME
        return record.access_token

    def _refresh(self, record: TokenRecord) -> TokenRecord:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": record.refresh_token,
            "client_id": self.connection.login,
            "client_secret": self.connection.password,
        }
        resp = self._post_token(form)
        if resp.status_code != 200:
            raise self._token_refusal(resp, (record.refresh_token, self.connection.password or ""))
        body = resp.json()
        now = self._clock()
        _mask(body.get("access_token"))
        _mask(body.get("refresh_token"))
        return replace(
            record,
            refresh_token=body["refresh_token"],
            refresh_obtained_at=now,
            access_token=body["access_token"],
            access_obtained_at=now,
            access_expires_at=now + float(body.get("expires_in", 600)),
            refreshes=record.refreshes + 1,
        )

    TOKEN_ENDPOINT = "oauth2/token"

    def _post_token(self, form: dict[str, Any]) -> requests.Response:
        """POST the token request; one retry when no reply came. The reply may be lost after Exact already rotated
        the token: the retry then tells which (it succeeds, or Exact says "Old refresh token used")."""
        url = f"{self.api_base}/api/oauth2/token"
        for attempt in (1, 2):
            self.stats.token_calls += 1
            try:
                return self.get_conn().post(url, data=form, timeout=self._timeout())
            except (requests.ConnectionError, requests.Timeout):
                if attempt == 1:
                    self._sleep(self._option("backoff_seconds", 2))
        # Nothing reached Exact, or nothing came back: transient, so the call's retries (and the task's) apply.
        raise ExactTransientError(
            0, self.TOKEN_ENDPOINT, message="The Exact Online token endpoint could not be reached twice in a row."
        )

    def _token_refusal(self, resp: requests.Response, secrets: tuple[str, ...]) -> ExactOnlineError:
        """The error for a refused refresh: ExactReconnectRequired when Exact refused the chain for good (only a new
        consent helps), ExactTransientError for a 5xx, ExactAuthError for the rest (e.g. a wrong client secret)."""
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        description = _scrub(str(body.get("error_description") or body.get("error") or resp.reason), secrets)
        if resp.status_code >= 500:
            return ExactTransientError(resp.status_code, self.TOKEN_ENDPOINT)
        if "Old refresh token used" in description:
            return ExactReconnectRequired(
                "'Old refresh token used': the token chain is broken, most likely because a token reply was lost in "
                "transit after Exact rotated the token"
            )
        if "expired" in description.lower() and "refresh token" in description.lower():
            return ExactReconnectRequired(f"the refresh token has expired, unused for 30 days: {description}")
        if resp.status_code == 400 and "invalid_grant" in str(body.get("error")):
            return ExactReconnectRequired(f"the consent was withdrawn or the token chain is unknown: {description}")
        reason = resp.headers.get("Reason")
        return ExactAuthError(
            f"Exact's token endpoint answered {resp.status_code}: {description}"
            + (f" (Reason: {_scrub(reason, secrets)})" if reason else "")
        )

    # ---- requests ---------------------------------------------------------------------------------------------
    def _timeout(self):
        return self._option("timeout", 0) or (10, 120)

    def _respect_budget(self) -> None:
        """Wait for the minutely window, or stop for the day, *before* a call that would get a 429."""
        if self.rate_budget is not None:
            spent_until = self.rate_budget.daily_spent(self.division)
            if spent_until:
                raise ExactDailyLimitReached(self.division, dt.datetime.fromtimestamp(spent_until / 1000, dt.UTC))
            while (wait := self.rate_budget.acquire(self.division)) is not None:
                log.info(
                    "Shared Exact budget of division %s spent for this minute; waiting %.1f s", self.division, wait
                )
                self.stats.rate_limit_sleeps += 1
                self.stats.seconds_waited_for_limits += wait
                self._sleep(wait)
        now_ms = self._clock() * 1000
        r = self.rate
        if r.daily_remaining == 0 and r.daily_reset_ms and r.daily_reset_ms > now_ms:
            raise ExactDailyLimitReached(self.division, dt.datetime.fromtimestamp(r.daily_reset_ms / 1000, dt.UTC))
        if r.minutely_remaining == 0 and r.minutely_reset_ms and r.minutely_reset_ms > now_ms:
            wait = self._after_reset((r.minutely_reset_ms - now_ms) / 1000 + 0.05)
            log.info("Exact minutely budget spent; waiting %.1f s for the next window", wait)
            self.stats.rate_limit_sleeps += 1
            self.stats.seconds_waited_for_limits += wait
            self._sleep(wait)
            r.minutely_remaining = None

    def _get_once(self, url: str, endpoint: str) -> dict:
        return self._call_once("GET", url, endpoint)

    def _call_once(self, method: str, url: str, endpoint: str, body: dict | None = None) -> dict:
        self._respect_budget()
        session = self.get_conn()
        headers = {"Authorization": f"Bearer {self.get_access_token()}"}
        self.stats.api_calls += 1
        started = time.perf_counter()
        try:
            if method == "GET":
                resp = session.get(url, headers=headers, timeout=self._timeout())
            else:
                resp = session.request(method, url, headers=headers, json=body, timeout=self._timeout())
        finally:
            self.stats.http_seconds += time.perf_counter() - started
        self.rate.update(resp.headers)
        if self.rate_budget is not None:
            h = resp.headers
            if "X-RateLimit-Minutely-Reset" in h:
                self.rate_budget.observe(
                    self.division,
                    "minute",
                    self.rate.minutely_reset_ms,
                    self.rate.minutely_limit,
                    self.rate.minutely_remaining,
                )
            if "X-RateLimit-Reset" in h:
                self.rate_budget.observe(
                    self.division, "day", self.rate.daily_reset_ms, self.rate.daily_limit, self.rate.daily_remaining
                )
        if resp.status_code in (200, 201):
            return resp.json()
        if resp.status_code == 204:  # a DELETE
            return {}
        if resp.status_code == 429:
            if "X-RateLimit-Minutely-Reset" in resp.headers:
                wait = self._after_reset(
                    max(self.rate.minutely_reset_ms / 1000 - self._clock(), 0) + 0.05
                    if self.rate.minutely_reset_ms
                    else 60
                )
                self.stats.rate_limit_sleeps += 1
                self.stats.seconds_waited_for_limits += wait
                raise ExactTransientError(429, endpoint, wait_seconds=wait)
            reset = self.rate.daily_reset_ms
            raise ExactDailyLimitReached(
                self.division, dt.datetime.fromtimestamp(reset / 1000, dt.UTC) if reset else None
            )
        raise self._refusal(resp, endpoint)

    def _refusal(self, resp: requests.Response, endpoint: str) -> ExactOnlineError:
        """The error of an answer that is neither data nor a 429."""
        if resp.status_code >= 500:
            return ExactTransientError(resp.status_code, endpoint)
        try:
            message = resp.json()["error"]["message"]["value"]
        except (ValueError, KeyError, TypeError):
            message = resp.reason or "error"
        if resp.status_code == 401:
            message += f" ({resp.headers.get('WWW-Authenticate', '')})"
            self._access = None
        return ExactApiError(resp.status_code, endpoint, message, resp.headers.get("Reason"))

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, ExactTransientError) and exc.wait_seconds is not None:
            return exc.wait_seconds  # a 429: until the reset, spread already added (_after_reset)
        return self._backoff(retry_state.attempt_number)

    def _backoff(self, attempt: int) -> float:
        """The wait after failed try `attempt` (1, 2, ...): "equal jitter", i.e. a random point in the upper half
        of the exponential step `backoff_seconds * 2 ** (attempt - 1)`, the step capped at MAX_BACKOFF_SECONDS.

        The jitter spreads the retries of processes that failed at the same moment (an Exact hiccup hits every
        running import at once). Equal rather than full jitter: a 5xx from Exact usually means an overloaded or
        restarting service, and the exponential steps are the hook's whole patience ("max_attempts" tries); full
        jitter (anywhere from 0) could spend them all within a few seconds.
        """
        step = min(self._option("backoff_seconds", 2) * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        return step / 2 + self._rng() * step / 2

    def _after_reset(self, seconds: float) -> float:
        """A wait that ends `seconds` from now, when Exact resets a budget: never shorter, at most
        RESET_SPREAD_SECONDS longer (see there)."""
        return seconds + self._rng() * RESET_SPREAD_SECONDS

    def _get_json(self, url: str, endpoint: str) -> dict:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "Exact call to %s failed (%s); retry %d",
                endpoint,
                type(exc).__name__ if exc else "?",
                state.attempt_number,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retryable),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self._max_attempts or int(self._option("max_attempts", 6))),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(self._get_once, url, endpoint)

    def _url(self, endpoint: str, params: dict[str, str] | None = None, *, division: bool = True) -> str:
        prefix = f"/api/v1/{self.division}/" if division else "/api/v1/"
        url = self.api_base + prefix + endpoint.lstrip("/")
        if params:
            url += "?" + urlencode(params, quote_via=quote, safe="$,'()")
        return url

    def _same_host(self, next_url: str) -> str:
        """`__next` is absolute; keep its path and query but never send our token to another host."""
        parts = urlsplit(next_url)
        return self.api_base + parts.path + (f"?{parts.query}" if parts.query else "")

    def iter_pages(self, endpoint: str, params: dict[str, str]) -> Iterator[list[dict]]:
        """Yield each page of results of a collection endpoint, following `__next` until the last page."""
        url: str | None = self._url(endpoint, params)
        while url:
            payload = self._get_json(url, endpoint).get("d", {})
            if isinstance(payload, dict) and "results" in payload:
                rows = payload["results"]
            elif isinstance(payload, dict):  # a single entity, or the undocumented {"0": {...}} variant
                rows = [v for k, v in payload.items() if k.isdigit()] or [payload]
            else:
                rows = list(payload)
            yield rows
            nxt = payload.get("__next") if isinstance(payload, dict) else None
            url = self._same_host(nxt) if nxt else None

    # ---- the API as the import uses it ------------------------------------------------------------------------
    def me(self) -> dict:
        payload = self._get_json(
            self._url("current/Me", {"$select": "CurrentDivision,UserID,FullName"}, division=False), "current/Me"
        )
        d = payload.get("d", {})
        return d["results"][0] if isinstance(d, dict) and d.get("results") else d

    def sync(self, endpoint: str, select: list[str], since_timestamp: int) -> Iterator[list[dict]]:
        """New and changed records of a sync endpoint (e.g. 'sync/CRM/Accounts') after `since_timestamp`."""
        fields = list(dict.fromkeys([*select, "Timestamp"]))
        params = {"$select": ",".join(fields), "$filter": f"Timestamp gt {int(since_timestamp)}L"}
        return self.iter_pages(endpoint, params)

    def deleted(self, entity_type: int | None, since_timestamp: int) -> Iterator[list[dict]]:
        """Deletions from `sync/Deleted` after `since_timestamp`: of one entity type, or (None) of every type, which
        is one read for all categories instead of one per entity type."""
        odata_filter = f"Timestamp gt {int(since_timestamp)}L"
        if entity_type is not None:
            odata_filter += f" and EntityType eq {int(entity_type)}"
        params = {"$select": "ID,EntityKey,EntityType,DeletedDate,Timestamp", "$filter": odata_filter}
        return self.iter_pages("sync/Deleted", params)

    DIVISION_FIELDS = ("Code", "Description", "Currency", "DivisionMoveDate")

    def division_details(self, fields: tuple[str, ...] = DIVISION_FIELDS) -> dict | None:
        """This connection's division as `system/Divisions` describes it (by default Code, Description, Currency and
        DivisionMoveDate, as Exact sends them), or None if Exact does not list it. One call.

        `system/Divisions` lists the divisions of the licence, not only those the user opened (Exact's entity doc,
        as copied in picqer/exact-php-client `SystemDivision.php`). Its URL needs a division, which Exact does not
        check (Exact's support, quoted in picqer/exact-php-client#470); ours is put there, so that the call counts
        against this division's budget like every other call of the import, and `$filter` on `Code` asks for this
        division alone. A regular endpoint (60 rows a page) without a sync twin, so no mandatory filter applies."""
        params = {"$select": ",".join(dict.fromkeys(["Code", *fields])), "$filter": f"Code eq {self.division}"}
        for page in self.iter_pages("system/Divisions", params):
            for row in page:
                if _positive_int(row.get("Code")) == self.division:
                    return {k: v for k, v in row.items() if k != "__metadata"}
        return None

    def collection(self, endpoint: str, select: list[str], odata_filter: str | None = None) -> Iterator[list[dict]]:
        """A regular or bulk endpoint. Regular/bulk endpoints that have a sync twin require a filter."""
        params = {"$select": ",".join(select)}
        if odata_filter:
            params["$filter"] = odata_filter
        return self.iter_pages(endpoint, params)

    # ---- webhooks (beyond.md §1: one subscription per division and topic) --------------------------------------
    @property
    def webhook_secret(self) -> str:
        """The app's webhook secret (Exact's App Centre: "Secret used for webhook messages"; not the client secret),
        kept in the connection's extra `webhook_secret`; "" if none. Masked in every log."""
        value = self._extra("webhook_secret")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ExactConfigError(
                self.exact_conn_id, "extra 'webhook_secret' must be a text; paste it as Exact shows it."
            )
        _mask(value)
        return value

    def webhook_subscriptions(self) -> list[dict]:
        """This app's subscriptions in the hook's division: ID, Topic, CallbackURL (an app sees only its own)."""
        params = {"$select": "ID,Topic,CallbackURL,Division,Created"}
        return [row for page in self.iter_pages(SUBSCRIPTIONS_ENDPOINT, params) for row in page]

    def subscribe_webhook(self, topic: str, callback_url: str) -> dict:
        """Subscribe `callback_url` to `topic` in the hook's division; Exact then validates the URL with an empty
        POST. Not retried: a POST that reached Exact but lost its answer would subscribe twice."""
        url = self._url(SUBSCRIPTIONS_ENDPOINT)
        answer = self._call_once("POST", url, SUBSCRIPTIONS_ENDPOINT, {"Topic": topic, "CallbackURL": callback_url})
        d = answer.get("d", answer)
        return d if isinstance(d, dict) else {}

    def unsubscribe_webhook(self, subscription_id: str) -> None:
        """Delete one subscription (Exact allows no update: delete and subscribe again to change one)."""
        if not GUID_TEXT.fullmatch(subscription_id or ""):
            raise ValueError("A webhook subscription ID is a GUID.")
        url = self._url(f"{SUBSCRIPTIONS_ENDPOINT}(guid'{subscription_id}')")
        self._call_once("DELETE", url, SUBSCRIPTIONS_ENDPOINT)

    def test_connection(self) -> tuple[bool, str]:
        try:
            me = self.me()
            return True, f"Connected as {me.get('FullName')}; configured division {self.division}"
        except Exception as exc:  # the UI shows the text
            return False, str(exc)
