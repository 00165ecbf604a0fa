"""A local HTTP server that speaks Exact Online's REST protocol, for the demo and the tests.

What it does the way Exact does (the sources are named where it matters):
- OAuth2: `POST /api/oauth2/token` with single-use, rotating refresh tokens ("Old refresh token used." on reuse),
  600 s access tokens, and the 570 s rule (400 "access_token not expired", `Reason: TooEarlyToRefreshTokens`).
- `GET /api/v1/current/Me`; per division: regular (60 per page, mandatory `$filter`), bulk and sync endpoints
  (1,000 per page, `$select` required; sync filters only on `Timestamp`) and `sync/Deleted`.
- The `d`/`results` envelope with `__metadata`, absolute `__next` links carrying `$skiptoken`, `/Date(ms)/`
  dates, 18-character space-padded account codes, OData error bodies.
- The six `X-RateLimit-*` headers; a minutely and a daily budget per division (window lengths configurable so
  that tests need not wait a real minute); 429 carrying only the exceeded limit's headers.
- Several divisions (divisions.py; `SandboxConfig.companies` and `divisions`), each with its own data and budgets;
  a token chain per user reaching the user's divisions (oauth.py), a 403 `NoDivisionAccess` for any other.
- `system/Divisions` with `DivisionMoveDate`, and a control that moves the division to another database as Exact
  does (every Timestamp regenerated from a small number; Exact's doc of Sync/Deleted, as copied in
  Pi-Systems/exact-online `Sync/Deleted.php`).
- The deletion log keeps about two months: a control purges entries older than N seconds (Exact's doc of
  Sync/Deleted via Pi-Systems/exact-online: "the log of records deleted is saved for 2 months").
- Goods delivery lines split over storage locations (`split_delivery_lines`, off by default): one row per location,
  all with the line's ID (Exact's entity doc, via Pi-Systems/exact-online `Sync/SalesOrder/GoodsDeliveryLines.php`;
  data.split_delivery_line).
- Switchable faults (5xx, dropped connections, slow replies, a token reply lost after rotation) and a control
  API under `/_sandbox/` to mutate data between runs and read what the server saw.

Exact's habits that the import must cope with (#14 "Exact fidelity"; each with its public source):
- Only the `$select`ed fields come back, on every endpoint (sync, bulk, regular, deleted): a field the import does
  not select is not in the answer at all (picqer `SyncSalesItemPrice.php`; Exact's REST reference).
- The division's own account is among the accounts: `Type` 'D', `Status` 'A' (ordinary accounts: `Type` 'A').
  Source: Exact's 2014 SDK test data (51 real account rows); `data.add_division_account`.
- Employees have `BusinessMobile` and `BusinessPhone` beside their private `Mobile` (picqer
  `SyncEmployee.php`: Mobile/Phone need HR roles): a third of them only a business mobile.
- Sales item prices without an account that are not the item's standard price: a project's and an employee's
  hourly rate, one in USD, one for another unit (picqer `SyncSalesItemPrice.php`: `Project`, `Employee`,
  `Currency`, `Unit`); `system/Divisions` gives the division's default `Currency` (Exact's 2022 metadata).
- `types_as_text` (off by default): numbers, booleans and the Int64 `Timestamp` written as JSON text ("12.50",
  "true", "1", "123456") on every endpoint. Source: Airbyte `source-exact`'s unit test
  `test_parse_item__type_casting` ("as that also is how Exact can return the data"); OData v2 writes Edm.Int64 as
  a string.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import json
import os
import pickle
import random
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from include.exact_sandbox import data
from include.exact_sandbox.divisions import (
    Divisions,
    DivisionSpec,
    RateWindows,
    as_spec,
    check_config,
    served,
    window_resets,
)
from include.exact_sandbox.oauth import DEFAULT_USER, DEFAULT_USERS, PRECONFIGURED_CHAIN, Chain, OAuthMixin
from include.exact_sandbox.odata import Comparison, ODataError, as_text, encode_value, matches, parse_filter
from include.exact_sandbox.registry_sources import entity_of, registry_sources
from include.exact_sandbox.webhooks import SUBSCRIPTIONS, WebhookHub, WebhookSettings
from include.outsmart_import.registry import Source

FIELDS = json.loads((Path(__file__).with_name("exact_fields.json")).read_text())["endpoints"]

# Fields on which Exact accepts a $filter on crm/Accounts (mandatory filtering; the list Exact's error message
# gave in picqer/exact-php-client#591, October 2022).
ACCOUNT_FILTER_FIELDS = {
    "Accountant",
    "AccountManager",
    "AddressLine1",
    "AddressLine2",
    "AddressLine3",
    "Blocked",
    "BRIN",
    "BSN",
    "ChamberOfCommerce",
    "City",
    "Classification",
    "Classification1",
    "Classification2",
    "Classification3",
    "Classification4",
    "Classification5",
    "Classification6",
    "Classification7",
    "Classification8",
    "Code",
    "CodeAtSupplier",
    "Country",
    "Created",
    "Email",
    "EndDate",
    "Fax",
    "ID",
    "InvoiceAccount",
    "IsAccountant",
    "IsReseller",
    "IsSales",
    "IsSupplier",
    "MainContact",
    "Modified",
    "Name",
    "Parent",
    "Phone",
    "Postcode",
    "PriceList",
    "Reseller",
    "RSIN",
    "SearchCode",
    "StartDate",
    "Status",
    "Type",
    "VATNumber",
}


# Mandatory-filter fields of logistics/Items (picqer/exact-php-client#591; the list there is truncated).
ITEM_FILTER_FIELDS = {
    "Barcode",
    "Class_01",
    "Class_02",
    "Class_03",
    "Class_04",
    "Class_05",
    "Class_06",
    "Class_07",
    "Class_08",
    "Class_09",
    "Class_10",
    "Code",
    "CostPriceNew",
    "Created",
    "Description",
    "EndDate",
    "ExtraDescription",
    "ID",
    "ItemGroup",
    "IsSalesItem",
    "IsStockItem",
    "Modified",
    "StartDate",
}


@dataclass(frozen=True)
class EndpointSpec:
    """How one Exact endpoint behaves: its kind, the records it serves, and its paging rules."""

    path: str  # as after /api/v1/{division}/
    kind: str  # "sync" | "bulk" | "regular" | "deleted"
    entity: str  # the data.Division records it serves (Division.records)
    metadata_type: str
    page_size: int
    filter_fields: frozenset[str] = frozenset()  # mandatory-filter fields (regular/bulk)
    key: str = "ID"  # the record key in __metadata and $skiptoken (GoodsDeliveries: EntryID)
    # The fields the registry selects here: the endpoint's known fields when exact_fields.json (Exact's metadata)
    # does not list the endpoint, i.e. for an endpoint a category just added to the registry reads.
    selected: tuple[str, ...] = ()


# Page sizes by kind: sync, bulk and deleted 1,000 records a page, regular endpoints 60 (picqer/exact-php-client).
PAGE_SIZE = {"sync": 1000, "bulk": 1000, "deleted": 1000, "regular": 60}


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"  # GoodsDeliveries
    if name.endswith("sses"):
        return name[:-2]  # Addresses
    return name[:-1] if name.endswith("s") else name  # Accounts; ProjectPlanning, Deleted stay


def metadata_type(path: str) -> str:
    """Exact's `__metadata.type` of an endpoint's records: sync/CRM/Accounts → Exact.Web.Api.Models.Sync.CRM.Account
    (the path's folders capitalised, the entity singular). crm/Accounts is Exact's exception (no folder)."""
    *folders, name = path.split("/")
    return ".".join(["Exact.Web.Api.Models", *(f[:1].upper() + f[1:] for f in folders), _singular(name)])


def _spec_of(path: str, sources: list[Source]) -> EndpointSpec:
    """The endpoint as the registry's Sources read it: a sync endpoint, or a regular one read in full."""
    kind = "sync" if sources[0].mode == "sync" else "regular"
    selected = tuple(dict.fromkeys(name for s in sources for name in s.select))
    entity = entity_of(path)
    return EndpointSpec(
        path, kind, entity, metadata_type(path), PAGE_SIZE[kind], key=sources[0].id_field, selected=selected
    )


# Endpoints the sandbox serves besides the registry's: the deletion log, the division list, and the bulk and regular
# twins of accounts, items and prices (the hook's tests, paging and mandatory filtering, picqer/exact-php-client#591).
OTHER_ENDPOINTS = [
    EndpointSpec("sync/Deleted", "deleted", "deleted", "Exact.Web.Api.Models.Sync.Deleted", 1000),
    EndpointSpec(
        "bulk/CRM/Accounts",
        "bulk",
        "accounts",
        metadata_type("bulk/CRM/Accounts"),
        1000,
        frozenset(ACCOUNT_FILTER_FIELDS),
    ),
    EndpointSpec(
        "crm/Accounts", "regular", "accounts", "Exact.Web.Api.Models.Account", 60, frozenset(ACCOUNT_FILTER_FIELDS)
    ),
    EndpointSpec(
        "logistics/Items", "regular", "items", metadata_type("logistics/Items"), 60, frozenset(ITEM_FILTER_FIELDS)
    ),
    EndpointSpec(
        "logistics/SalesItemPrices",
        "regular",
        "sales_item_prices",
        metadata_type("logistics/SalesItemPrices"),
        60,
        frozenset({"ID", "Item", "Account", "Modified"}),
    ),
    # The licence's divisions: their default currency (#14 item 6) and DivisionMoveDate (item 3; picqer
    # `SystemDivision.php`); keyed by Code; no sync twin, so no mandatory filter.
    EndpointSpec("system/Divisions", "regular", "divisions", metadata_type("system/Divisions"), 60, key="Code"),
]


def endpoint_specs() -> dict[str, EndpointSpec]:
    """Every endpoint the sandbox serves: each Exact stream of the registry (as it is when called), then the others.
    A category added to the registry is served at once; its records come from data.build_declared."""
    by_path: dict[str, list[Source]] = {}
    for source in registry_sources():
        by_path.setdefault(source.endpoint, []).append(source)
    specs = {path: _spec_of(path, sources) for path, sources in by_path.items()}
    return {**specs, **{spec.path: spec for spec in OTHER_ENDPOINTS if spec.path not in specs}}


ENDPOINTS = endpoint_specs()  # the project's registry; a SandboxState takes its own when it starts
FIELD_LIST_FOR = {"bulk/CRM/Accounts": "crm/Accounts"}


@dataclass
class SandboxConfig:
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    redirect_uri: str = "https://localhost/callback"
    division: int = 3_000_001
    initial_refresh_token: str = "sandbox-refresh-token-0"
    seed: int = 1
    size: int = 500
    access_token_lifetime: float = 600.0
    min_token_interval: float = 570.0
    refresh_token_lifetime: float = 30 * 86400.0
    minutely_limit: int = 60
    daily_limit: int = 5000
    minute_seconds: float = 60.0
    day_seconds: float | None = None  # None: the real UTC day, as Exact
    error_limit_per_hour: int = 10
    accounts_only: bool = False  # generate only the accounts (large benchmark divisions)
    # Write numbers, booleans and the Timestamp as JSON text ("12.50", "true", "123456") on every endpoint, as
    # Exact can (see `odata.as_text`). Off by default: Exact mostly writes them as JSON numbers and booleans.
    types_as_text: bool = False
    # Share of the goods delivery lines delivered from two or three storage locations: one row per location, all
    # with the line's ID (data.split_delivery_line). Off by default, so that the other tests' line IDs stay keys.
    split_delivery_lines: float = 0.0
    # OAuth (include/exact_sandbox/oauth.py): the app's registered redirect_uri is `redirect_uri` above; users who can
    # log in on the consent page (user name -> password, full_name, optional user_id and divisions); how long an
    # authorization code lives (Exact: about 3 minutes, reference §2.2).
    users: dict = field(default_factory=lambda: copy.deepcopy(DEFAULT_USERS))
    authorization_code_lifetime: float = 180.0
    # The app's webhook secret (Exact's App Centre), which signs the events (webhooks.py; /_sandbox/webhooks).
    webhook_secret: str = "sandbox-webhook-secret"
    # Several divisions (#21: many companies in one deployment, as an accountant's licence has). `companies`
    # divisions are served, codes division, division + 1, ...; division + i has seed + i, `size` accounts and the
    # limits above, each division its own budget (Exact's limits are per app per division). `divisions` adds
    # divisions or gives one its own seed, size, limits or description (DivisionSpec, or its fields as a dict, as
    # JSON gives them). A division's data is built when it is first used: fifty divisions start as fast as one.
    # Which user reaches which divisions: `users` (a user's `divisions`; none given: every division).
    companies: int = 1
    divisions: list = field(default_factory=list)

    def __post_init__(self) -> None:
        check_config(self)  # a clear error at the start, not at the first call


@dataclass
class Faults:
    error_rate: float = 0.0  # share of API calls answered 503
    drop_rate: float = 0.0  # share of API calls whose connection is closed without a reply
    slow_rate: float = 0.0  # share of API calls answered after slow_seconds
    slow_seconds: float = 0.0
    latency_seconds: float = 0.0  # added to every API call
    lose_next_token_reply: bool = False  # rotate the token, then drop the connection
    fail_next_token_calls: int = 0  # answer this many token calls 503 without looking at them (an Exact outage)
    repeat_stale_ids: bool = False  # sync pages repeat their first two IDs with an older Timestamp and stale data
    seed: int = 7


@dataclass
class Stats:
    calls: Counter = field(default_factory=Counter)  # per endpoint path
    statuses: Counter = field(default_factory=Counter)
    client_errors: dict = field(default_factory=lambda: defaultdict(Counter))  # endpoint -> status -> count
    token_calls: Counter = field(default_factory=Counter)  # outcome -> count
    faults_injected: Counter = field(default_factory=Counter)
    division_calls: Counter = field(default_factory=Counter)  # per division: the calls its budget counted
    requests: list = field(default_factory=list)  # (method, path+query, status)


class _Dropped(Exception):
    """Close the connection without writing a reply."""


def _now() -> float:
    return time.time()


class SandboxState(OAuthMixin):
    def __init__(self, config: SandboxConfig):
        self.config = config
        self.lock = threading.RLock()
        self.faults = Faults()
        self._fault_rng = random.Random(self.faults.seed)
        self.stats = Stats()
        self.endpoints = endpoint_specs()
        self.divisions = Divisions(config)
        self.divisions.get(config.division)  # the main division at the start, as always; the others on first use
        self.access_tokens: dict[str, float] = {}  # access token -> expiry
        self._init_oauth()  # the preconfigured chains; every consent adds one (oauth.py)
        self._by_timestamp: dict[tuple[int, str], tuple] = {}
        self.webhooks = WebhookHub(config.client_id, WebhookSettings(secret=config.webhook_secret))

    @property
    def webhook_subscriptions(self) -> dict:
        """Kept across restarts, as Exact keeps them (the webhook queue is not)."""
        return self.webhooks.subscriptions

    @webhook_subscriptions.setter
    def webhook_subscriptions(self, value: dict) -> None:
        self.webhooks.subscriptions = value

    # The main division's data and rate windows, as the state had them before several divisions (tests, old files).
    @property
    def division(self) -> data.Division:
        return self.divisions.get(self.config.division)

    @division.setter
    def division(self, value: data.Division) -> None:
        self.divisions.adopt(value)

    @property
    def minute_window(self) -> tuple[float, int]:
        return self.divisions.windows.setdefault(self.config.division, RateWindows()).minute

    @property
    def day_window(self) -> tuple[float, int]:
        return self.divisions.windows.setdefault(self.config.division, RateWindows()).day

    def division_codes(self) -> list[int]:
        """The codes of the divisions the sandbox serves, the main one first."""
        return list(self.divisions.specs())

    def data_of(self, division: int | None = None) -> data.Division:
        """A division's data (default: the main division), built on first use. KeyError: not served."""
        code = self.config.division if division is None else division
        if code not in self.divisions.specs():
            raise KeyError(f"division {code} is not one the sandbox serves")
        return self.divisions.get(code)

    def by_timestamp(self, entity: str, division: int | None = None) -> tuple[list[dict], list[int]]:
        """The entity's records in Timestamp order, and their Timestamps (for bisect): a sync page then costs
        O(page), not a scan of the whole division. Rebuilt whenever a record gets a new rowversion."""
        div = self.data_of(division)
        records = div.records(entity)
        key = (div.rowversion, len(records), id(records))
        hit = self._by_timestamp.get((div.division, entity))
        if hit is None or hit[0] != key:
            rows = sorted(records.values() if isinstance(records, dict) else records, key=lambda r: r["Timestamp"])
            hit = (key, rows, [r["Timestamp"] for r in rows])
            self._by_timestamp[(div.division, entity)] = hit
        return hit[1], hit[2]

    def divisions_listing(self, chain: Chain | None) -> dict[int, dict]:
        """system/Divisions for the chain's user: every division they may open (accountants see their clients'
        divisions beside their own, beyond.md §4.2), and the licence's practice division, which is never served.
        A division not built yet is listed without building it (no move date, the default currency)."""
        specs = self.divisions.specs()
        current = self.current_division(chain)
        rows: dict[int, dict] = {}
        for code in self.divisions_of(chain):
            if code not in specs:
                continue
            built = self.divisions.data.get(code)
            rows[code] = data.division_row(
                code,
                specs[code].description or "",
                currency=getattr(built, "currency", "EUR"),
                move_date=getattr(built, "move_date", None),
                current=code == current,
                main=code == self.config.division,
            )
        like = rows.get(self.config.division) or next(iter(rows.values()), None)
        if like is not None:
            practice = max(specs) + 1
            rows[practice] = data.practice_division_row(like, practice)
        return rows

    def now(self) -> float:
        return _now()  # looked up at each call: tests put a fake clock in this module's `_now`

    # The preconfigured chain's fields, as the state had them before chains per consent (tests and old state files).
    @property
    def _chain0(self) -> Chain:
        return self.chains[PRECONFIGURED_CHAIN]

    @property
    def refresh_token(self) -> str:
        return self._chain0.refresh_token

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self._chain0.refresh_token = value

    @property
    def refresh_issued_at(self) -> float:
        return self._chain0.refresh_issued_at

    @refresh_issued_at.setter
    def refresh_issued_at(self, value: float) -> None:
        self._chain0.refresh_issued_at = value

    @property
    def old_refresh_tokens(self) -> set[str]:
        return self._chain0.old_refresh_tokens

    @old_refresh_tokens.setter
    def old_refresh_tokens(self, value: set[str]) -> None:
        self._chain0.old_refresh_tokens = value

    @property
    def last_token_issued_at(self) -> float | None:
        return self._chain0.last_token_issued_at

    @last_token_issued_at.setter
    def last_token_issued_at(self, value: float | None) -> None:
        self._chain0.last_token_issued_at = value

    # ---- persistence (make airflow): real Exact divisions and their token chains outlive our restarts -------------
    _PERSISTED = ("chains", "codes", "access_tokens", "access_chain", "webhook_subscriptions")
    # What a state file written before chains per consent holds instead of `chains`: the preconfigured chain.
    _LEGACY = ("refresh_token", "refresh_issued_at", "old_refresh_tokens", "last_token_issued_at")

    def save(self, path: str | os.PathLike) -> None:
        """Write the token chains (not faults, stats or rate windows) to `path`, atomically, and each division that
        changed to its own file beside it (divisions.Divisions.save)."""
        files = self.divisions.save(path, self.lock)
        with self.lock:
            blob = pickle.dumps({**{name: getattr(self, name) for name in self._PERSISTED}, "division_files": files})
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> bool:
        """Restore what `save` wrote (the divisions are read back on first use); False when there is nothing to
        restore (first start). A file of the single-division sandbox holds its division itself: that one is kept."""
        if not os.path.exists(path):
            return False
        with open(path, "rb") as f:
            saved = pickle.load(f)  # our own file, written by save() above
        with self.lock:
            for name in (*self._PERSISTED, *self._LEGACY):
                if name in saved:
                    setattr(self, name, saved[name])
            if "division_files" in saved:
                self.divisions.restore(path, saved["division_files"])
            if "division" in saved:
                self.division = saved["division"]
            self._add_preconfigured_chains()  # users configured since the file was written
            self._by_timestamp.clear()
        return True

    # ---- rate limits: per app per division (divisions.Divisions.take_call) -----------------------------------
    def _windows(self, now: float) -> tuple[float, float]:
        return window_resets(self.config, now)

    def take_call(self, division: int | None = None) -> tuple[int, dict[str, str]]:
        """Count one call against the division's budgets (default: the main division's). (status, headers)."""
        code = self.config.division if division is None else division
        status, headers = self.divisions.take_call(code, _now())
        if status == 200:
            self.stats.division_calls[code] += 1
        return status, headers

    # ---- OAuth (the token and authorize endpoints are in oauth.OAuthMixin) --------------------------------------
    def check_bearer(self, header: str | None) -> str | None:
        """Return an error text for a bad Authorization header, or None if it is valid."""
        if not header or not header.lower().startswith("bearer "):
            return "no access token"
        token = header[7:].strip()
        exp = self.access_tokens.get(token)
        if exp is None:
            return "invalid access token"
        if _now() > exp:
            return "access token expired"
        return None

    # ---- fault injection --------------------------------------------------------------------------------------
    def roll_fault(self) -> str | None:
        f = self.faults
        r = self._fault_rng.random()
        if r < f.drop_rate:
            return "drop"
        if r < f.drop_rate + f.error_rate:
            return "error"
        if r < f.drop_rate + f.error_rate + f.slow_rate:
            return "slow"
        return None


def _bearer(header: str | None) -> str:
    return header[7:].strip() if header and header.lower().startswith("bearer ") else ""


def _odata_error(message: str) -> dict:
    return {"error": {"code": "", "message": {"lang": "", "value": message}}}


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # The reply leaves in two writes (headers, then body); with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers, about 40 ms on Linux: that, not the sandbox's work, was most of a call.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass  # the sandbox keeps its own request log in Stats

    # ---- plumbing ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> SandboxState:
        return self.server.state

    def _send(self, status: int, body=None, headers: dict[str, str] | None = None, content_type: str = "") -> None:
        """Send a reply: `body` as JSON, or as it is when it is text (a page, Exact's plain "Bad Request")."""
        if isinstance(body, str):
            payload = body.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
            content_type = "" if body is None else "application/json; charset=utf-8"
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
        with self.state.lock:
            st = self.state.stats
            st.statuses[status] += 1
            st.requests.append((self.command, self.path, status))
            if len(st.requests) > 20000:
                del st.requests[:10000]

    def _drop(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
        self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._read_body() if method in ("POST", "PUT") else b""
        try:
            if url.path.startswith("/_sandbox/"):
                return self._control(method, url.path[len("/_sandbox/") :], body)
            if url.path == "/api/oauth2/token" and method == "POST":
                return self._token(body)
            if url.path == "/api/oauth2/auth" and method in ("GET", "POST"):
                return self._authorize(method, url.query if method == "GET" else body.decode("utf-8"))
            if url.path == "/api/v1/current/Me":
                return self._me(method)
            m = re.fullmatch(r"/api/v1/(\d+)/(.+)", url.path)
            self.request_body = body  # the webhook subscription endpoint reads it
            if m:
                return self._api(method, int(m.group(1)), m.group(2), url.query)
            self._send(404, _odata_error("Resource not found"))
        except _Dropped:
            self._drop()

    # ---- OAuth ------------------------------------------------------------------------------------------------
    def _token(self, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        with self.state.lock:
            if self.state.faults.fail_next_token_calls > 0:
                self.state.faults.fail_next_token_calls -= 1
                self.state.stats.faults_injected["token_error"] += 1
                return self._send(503, _odata_error("Service Unavailable"))
            status, payload, headers = self.state.token(form)
            lose = status == 200 and self.state.faults.lose_next_token_reply
            if lose:
                self.state.faults.lose_next_token_reply = False
                self.state.stats.faults_injected["lost_token_reply"] += 1
        if lose:
            raise _Dropped()
        self._send(status, payload, headers)

    def _authorize(self, method: str, query: str) -> None:
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        with self.state.lock:
            status, page, headers = self.state.authorize(method, params)
        self._send(status, page, headers, content_type="text/html; charset=utf-8" if page else "")

    def _me(self, method: str) -> None:
        with self.state.lock:
            err = self.state.check_bearer(self.headers.get("Authorization"))
            chain = self.state.chain_of_access(_bearer(self.headers.get("Authorization")))
            user = self.state.user(chain.user if chain else DEFAULT_USER)
            current = self.state.current_division(chain)
        if err:
            return self._send(
                401,
                _odata_error("Unauthorized"),
                {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{err}"'},
            )
        base = self._base_url()
        self._send(
            200,
            {
                "d": {
                    "results": [
                        {
                            "__metadata": {
                                "uri": f"{base}/api/v1/current/Me(guid'{user['user_id']}')",
                                "type": "Exact.Web.Api.System.Me",
                            },
                            # the user's current division (Exact: the one the user last opened)
                            "CurrentDivision": self._encode(current),
                            "UserID": user["user_id"],
                            "UserName": user["user_name"],
                            "FullName": user.get("full_name") or user["user_name"],
                            "LanguageCode": "nl-NL",
                            "Legislation": "NL",
                            "ServerUtcOffset": self._encode(3600),
                        }
                    ]
                }
            },
        )

    def _base_url(self) -> str:
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        return f"http://{host}"

    # ---- the REST API -----------------------------------------------------------------------------------------
    def _api(self, method: str, division: int, path: str, query: str) -> None:
        st = self.state
        fault = self._count_and_delay(path)
        allowed, chain = self._division_access(path, division)
        if not allowed:
            return
        st.divisions.get(division)  # built on first use, outside the lock: the other divisions are served meanwhile
        with st.lock:
            status, rate_headers = st.take_call(division)
            if status == 429:
                return self._send(429, None, rate_headers)
            if fault == "error":
                st.stats.faults_injected["error"] += 1
                return self._send(503, _odata_error("Service Unavailable"), rate_headers)
            if path.startswith(SUBSCRIPTIONS):  # webhooks.py
                status, answer = st.webhooks.handle(method, division, path, self.request_body, self._base_url())
                return self._send(status, answer, rate_headers)
            spec = st.endpoints.get(path)
            if spec is None:
                return self._client_error(404, path, f"Resource not found: {path}", rate_headers)
            if method != "GET":
                return self._client_error(405, path, "Method not allowed for this sandbox endpoint", rate_headers)
            try:
                body = self._collection(spec, division, query, chain)
            except ODataError as exc:
                return self._client_error(400, path, str(exc), rate_headers)
            self._send(200, body, rate_headers)

    def _division_access(self, path: str, division: int) -> tuple[bool, Chain | None]:
        """(True, the access token's chain) if the token is valid and its user may open `division`; else (False, None)
        once the refusal is sent: 401 for the token; 403 `NoDivisionAccess` for a division the sandbox does not
        serve or the user may not open (Exact's Reason header, reference §7.2)."""
        st = self.state
        with st.lock:
            err = st.check_bearer(self.headers.get("Authorization"))
            if err:
                self._client_error(
                    401,
                    path,
                    "Unauthorized",
                    {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{err}"'},
                )
                return False, None
            chain = st.chain_of_access(_bearer(self.headers.get("Authorization")))
            if division not in st.divisions.specs() or division not in st.divisions_of(chain):
                self._client_error(403, path, "Forbidden", {"Reason": "NoDivisionAccess"})
                return False, None
            return True, chain

    def _encode(self, value):
        """One property value as Exact writes it (with `types_as_text`: numbers and booleans as text)."""
        return self._encoder()(value)

    def _encoder(self) -> Callable:
        if self.state.config.types_as_text:
            return lambda value: as_text(encode_value(value))
        return encode_value

    def _count_and_delay(self, path: str) -> str | None:
        """Count the call and roll its fault: added latency, a dropped connection (raises) or a slow answer are
        played here; the fault is returned, because an "error" fault is answered after the auth checks."""
        st = self.state
        with st.lock:
            st.stats.calls[path] += 1
            fault = st.roll_fault()
            latency = st.faults.latency_seconds
            slow = st.faults.slow_seconds
        if latency:
            time.sleep(latency)
        if fault == "drop":
            with st.lock:
                st.stats.faults_injected["drop"] += 1
            raise _Dropped()
        if fault == "slow":
            with st.lock:
                st.stats.faults_injected["slow"] += 1
            time.sleep(slow)
        return fault

    def _client_error(self, status: int, path: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.state.stats.client_errors[path][status] += 1
        self._send(status, _odata_error(message), headers)

    def _collection(self, spec: EndpointSpec, division: int, query: str, chain: Chain | None) -> dict:
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        unknown = set(params) - {"$select", "$filter", "$skiptoken", "$top", "$orderby", "$inlinecount"}
        if unknown:
            raise ODataError(f"Query option {sorted(unknown)[0]} is not supported.")
        select, known = _select(spec, params)
        comparisons = _comparisons(spec, params.get("$filter", ""))
        skiptoken = params.get("$skiptoken")
        top = params.get("$top")
        page_size = spec.page_size if not top else min(spec.page_size, int(top))
        if spec.kind in ("sync", "deleted"):
            rows = self._rows_by_timestamp(spec, division, comparisons, skiptoken, page_size)
        elif spec.entity == "divisions":  # system/Divisions: the user's divisions, whichever is in the URL
            rows = self._rows_by_key(spec, self.state.divisions_listing(chain), comparisons, skiptoken)
        else:
            rows = self._rows_by_key(spec, self.state.data_of(division).records(spec.entity), comparisons, skiptoken)
        page, more = rows[:page_size], len(rows) > page_size and not top
        base = self._base_url()
        encode = self._encoder()
        results = []
        for r in page:
            out = {
                "__metadata": {
                    "uri": f"{base}/api/v1/{division}/{spec.path}({_key_literal(r[spec.key])})",
                    "type": spec.metadata_type,
                }
            }
            for name in select or sorted(known):
                out[name] = encode(r.get(name))
            results.append(out)
        if self.state.faults.repeat_stale_ids and spec.kind == "sync" and results:
            results += _stale_copies(results[:2])
        d: dict = {"results": results}
        if more:
            last = page[-1]
            token = f"{last['Timestamp']}L" if spec.kind in ("sync", "deleted") else f"guid'{last[spec.key]}'"
            next_params = {k: v for k, v in params.items() if k != "$skiptoken"}
            next_params["$skiptoken"] = token
            d["__next"] = f"{base}/api/v1/{division}/{spec.path}?" + urlencode(
                next_params, quote_via=quote, safe="$,'()"
            )
        return {"d": d}

    def _rows_by_timestamp(
        self, spec: EndpointSpec, division: int, comparisons: list[Comparison], skiptoken: str | None, page_size: int
    ) -> list[dict]:
        """A sync or deleted page: rows after the skiptoken and any `Timestamp gt` bound, one more than a page at
        most (that one says "more")."""
        ordered, stamps = self.state.by_timestamp(spec.entity, division)
        bounds = [int(skiptoken.rstrip("L"))] if skiptoken else []
        bounds += [c.value for c in comparisons if c.field == "Timestamp" and c.op == "gt" and isinstance(c.value, int)]
        start = bisect.bisect_right(stamps, max(bounds)) if bounds else 0
        rows = []
        for i in range(start, len(ordered)):
            r = ordered[i]
            if matches(r, comparisons):
                rows.append(r)
                if len(rows) > page_size:
                    break
        return rows

    def _rows_by_key(
        self, spec: EndpointSpec, records: dict | list, comparisons: list[Comparison], skiptoken: str | None
    ) -> list[dict]:
        """A regular or bulk endpoint: the matching rows in key order, after the `guid'...'` skiptoken."""
        rows = list(records.values()) if isinstance(records, dict) else list(records)
        rows = [r for r in rows if matches(r, comparisons)]
        rows.sort(key=lambda r: r[spec.key])
        if skiptoken:
            m = re.fullmatch(r"guid'([0-9a-fA-F-]{36})'", skiptoken)
            if not m:
                raise ODataError("Invalid $skiptoken.")
            rows = [r for r in rows if r[spec.key] > m.group(1).lower()]
        return rows

    # ---- control API (the sandbox's own; not part of Exact) ---------------------------------------------------
    def _control(self, method: str, what: str, body: bytes) -> None:
        req = json.loads(body or b"{}") if method == "POST" else {}
        handler = self.CONTROL_ENDPOINTS.get(what)
        if handler is None:
            return self._send(404, {"error": f"unknown control endpoint {what!r}"})
        with self.state.lock:  # each answers under the lock, from one consistent state
            handler(self, method, req)

    def _control_health(self, method: str, req: dict) -> None:
        self._send(200, {"ok": True})

    def _control_stats(self, method: str, req: dict) -> None:
        s = self.state.stats
        self._send(
            200,
            {
                "calls": dict(s.calls),
                "statuses": {str(k): v for k, v in s.statuses.items()},
                "client_errors": {k: {str(a): b for a, b in v.items()} for k, v in s.client_errors.items()},
                "token_calls": dict(s.token_calls),
                "faults_injected": dict(s.faults_injected),
                "division_calls": {str(k): v for k, v in s.division_calls.items()},
                "requests": [list(r) for r in s.requests[-int(req.get("last", 200)) :]],
            },
        )

    def _control_reset_stats(self, method: str, req: dict) -> None:
        self.state.stats = Stats()
        self._send(200, {"ok": True})

    def _control_faults(self, method: str, req: dict) -> None:
        st = self.state
        if method == "POST":
            for k, v in req.items():
                if not hasattr(st.faults, k):
                    return self._send(400, {"error": f"unknown fault setting {k!r}"})
                setattr(st.faults, k, v)
            st._fault_rng = random.Random(st.faults.seed)
        self._send(200, asdict(st.faults))

    def _control_config(self, method: str, req: dict) -> None:
        st = self.state
        if method == "POST":
            unknown = [k for k in req if not hasattr(st.config, k)]
            if unknown:
                return self._send(400, {"error": f"unknown config setting {unknown[0]!r}"})
            before = {k: getattr(st.config, k) for k in req}
            for k, v in req.items():
                setattr(st.config, k, v)
            try:
                check_config(st.config)
            except ValueError as exc:  # nothing changes: the divisions and users stay as they were
                for k, v in before.items():
                    setattr(st.config, k, v)
                return self._send(400, {"error": str(exc)})
        self._send(200, asdict(st.config))

    def _control_divisions(self, method: str, req: dict) -> None:
        """The divisions the sandbox serves: code, description, seed, size, limits, the current windows' counts, and
        whether its data is built yet (a division is built on first use)."""
        st = self.state
        now = _now()
        out = [
            {**asdict(spec), **st.divisions.usage(code, now), "built": code in st.divisions.data}
            for code, spec in st.divisions.specs().items()
        ]
        self._send(200, {"divisions": out})

    def _control_limits(self, method: str, req: dict) -> None:
        """One division's rate limits (Exact gives some divisions other numbers): POST `{"division": code,
        "minutely_limit": n, "daily_limit": n}` (either limit may be left out); GET: every division's."""
        st = self.state
        if method == "POST":
            code = self._division_in(req)
            if code is None:
                return None
            given = {k: req[k] for k in ("minutely_limit", "daily_limit") if k in req}
            try:
                spec = replace(as_spec(_own_spec(st.config, code)), **given)
                as_spec(spec)
            except (TypeError, ValueError) as exc:
                return self._send(400, {"error": str(exc)})
            st.config.divisions = [d for d in st.config.divisions if as_spec(d).code != code] + [spec]
        now = _now()
        self._send(200, {str(code): st.divisions.usage(code, now) for code in st.divisions.specs()})

    def _division_in(self, req: dict) -> int | None:
        """The division a control names (`"division": code`; default the main division), or None once a 400 saying
        which divisions there are is sent."""
        code = req.get("division", self.state.config.division)
        specs = self.state.divisions.specs()
        if code not in specs or isinstance(code, bool):
            error = f"unknown division {code!r}: the sandbox serves {served(specs)} (GET /_sandbox/divisions)"
            self._send(400, {"error": error})
            return None
        return code

    def _control_token_chain(self, method: str, req: dict) -> None:
        # For tests only: what the server holds, so a test can check the chain is still alive.
        st = self.state
        self._send(
            200,
            {
                "refresh_token": st.refresh_token,
                "old_count": len(st.old_refresh_tokens),
                "last_token_issued_at": st.last_token_issued_at,
            },
        )

    def _control_token_chains(self, method: str, req: dict) -> None:
        # For tests only: every chain (the preconfigured one and one per consent), with its user and state.
        self._send(200, {"chains": self.state.chains_summary()})

    def _control_revoke_consent(self, method: str, req: dict) -> None:
        """The user withdraws the app's access in Exact (`{"user": name}`: all their chains), or `{"chain": id}`."""
        if method != "POST" or not (req.get("user") or req.get("chain")):
            return self._send(400, {"error": 'POST {"user": name} or {"chain": id}'})
        revoked = self.state.revoke_consent(user=req.get("user"), chain_id=req.get("chain"))
        self._send(200 if revoked else 404, {"revoked": revoked})

    def _control_age_oauth(self, method: str, req: dict) -> None:
        """As if `seconds` had passed for codes, refresh tokens and access tokens (31 days: an unused refresh token
        has expired), while the data and rate windows stay on the real clock."""
        try:
            seconds = float(req["seconds"])
        except (KeyError, TypeError, ValueError):
            return self._send(400, {"error": 'POST {"seconds": number}'})
        self.state.age_oauth(seconds)
        self._send(200, {"aged_seconds": seconds})

    def _control_records(self, method: str, req: dict) -> None:
        entity = req.get("entity", "accounts")
        code = self._division_in(req)
        if code is None:
            return None
        rows = self.state.data_of(code).records(entity)
        rows = list(rows.values()) if isinstance(rows, dict) else list(rows)
        # `every`: each n-th record only; `fields`: only these fields (keeps a million-record division cheap).
        rows = rows[:: int(req.get("every", 1))]
        fields = req.get("fields")
        self._send(
            200,
            {"records": [{k: encode_value(v) for k, v in r.items() if not fields or k in fields} for r in rows]},
        )

    def _control_move_division(self, method: str, req: dict) -> None:
        """Exact moves the division to another database: every Timestamp starts again from a small number (`start`,
        default 1) and DivisionMoveDate is set (data.move_division)."""
        code = self._division_in(req)
        if code is None:
            return None
        div = self.state.data_of(code)
        high = data.move_division(div, now=dt.datetime.now(dt.UTC), start=int(req.get("start", 1)))
        self.state.divisions.changed(code)
        self._send(200, {"division_move_date": encode_value(div.move_date), "highest_timestamp": high})

    def _control_purge_deleted(self, method: str, req: dict) -> None:
        """Exact keeps the deletion log about two months: drop the entries older than `older_than_seconds` (default
        data.DELETION_LOG_RETENTION; 0 purges every entry, as if the import had not run for two months)."""
        code = self._division_in(req)
        if code is None:
            return None
        seconds = float(req.get("older_than_seconds", data.DELETION_LOG_RETENTION.total_seconds()))
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
        self.state.divisions.changed(code)
        self._send(200, {"purged": data.purge_deleted(self.state.data_of(code), before=before)})

    def _control_mutate(self, method: str, req: dict) -> None:
        code = self._division_in(req)
        if code is None:
            return None
        try:
            self.state.divisions.changed(code)
            result = self._mutate(req, self.state.data_of(code))
        except (KeyError, ValueError) as exc:
            return self._send(400, {"error": f"{type(exc).__name__}: {exc}"})
        action = {"added": "Create", "updated": "Update", "deleted": "Delete", "rows": "Update"}
        for name, keys in result.items():  # Exact's webhook events of the change (webhooks.py)
            keys = [req["id"]] if name == "rows" else keys
            entity = req.get("entity", "accounts")
            self.state.webhooks.announce(code, entity, action[name], keys, self._base_url())
        self._send(200, result)

    def _control_webhooks(self, method: str, req: dict) -> None:
        """GET: the webhook settings (not the secret), what was sent, the subscriptions; POST: change settings."""
        error = self.state.webhooks.configure(req) if method == "POST" else None
        self._send(400 if error else 200, {"error": error} if error else self.state.webhooks.view())

    def _control_webhook_burst(self, method: str, req: dict) -> None:
        """`{"entity": "accounts", "count": 1000}`: that many Update events of existing records at once; a division
        with fewer records gets some records' events more than once (a record edited again), as a busy office sends."""
        code = self._division_in(req)
        if code is None:
            return None
        entity = req.get("entity", "accounts")
        records = self.state.data_of(code).records(entity)
        ids = list(records) if isinstance(records, dict) else []
        count = min(int(req.get("count", 1)), 10_000)  # a test's burst, not a load generator
        keys = [ids[i % len(ids)] for i in range(count)] if ids else []
        queued = self.state.webhooks.announce(code, entity, "Update", keys, self._base_url())
        self._send(200, {"queued": queued})

    CONTROL_ENDPOINTS: dict[str, Callable[[SandboxHandler, str, dict], None]] = {
        "health": _control_health,
        "stats": _control_stats,
        "reset-stats": _control_reset_stats,
        "faults": _control_faults,
        "config": _control_config,
        "token-chain": _control_token_chain,
        "token-chains": _control_token_chains,
        "revoke-consent": _control_revoke_consent,
        "age-oauth": _control_age_oauth,
        "records": _control_records,
        "mutate": _control_mutate,
        "move-division": _control_move_division,
        "purge-deleted": _control_purge_deleted,
        "webhooks": _control_webhooks,
        "webhook-burst": _control_webhook_burst,
        "divisions": _control_divisions,
        "limits": _control_limits,
    }

    def _mutate(self, req: dict, div: data.Division) -> dict:
        """`{"entity": "accounts", "op": "update"|"add"|"delete", ...}`, applied with new rowversions.

        update: `records: [{"ID": ..., <field>: <value>}]` (accounts without fields get a random realistic edit);
        add: `records: [{<field overrides>}]` or `count` (accounts are generated, other entities shaped like an
        existing record); delete: `ids: [...]`.
        Goods delivery lines split over storage locations (data.split_delivery_line): `op: "split"`, `id`,
        `quantities: {<location code>: <quantity>}`; one location's row is updated with `"StorageLocation"` in the
        record beside its `"ID"`, and deleted as `"<ID>/<StorageLocation>"` (the line's ID deletes every row).
        `"division": code` changes that division (default: the main division).
        """
        now = dt.datetime.now(dt.UTC)
        entity, op = req.get("entity", "accounts"), req.get("op")
        try:
            records = div.records(entity)
        except KeyError:
            raise ValueError(f"unknown entity {entity!r}") from None
        if not isinstance(records, dict):
            raise ValueError(f"entity {entity!r} cannot be changed")
        if op == "add":
            return {"added": _add_records(div, entity, req, now)}
        if op == "update":
            return {"updated": _update_records(div, entity, req, now)}
        if op == "delete":
            for i in req.get("ids", []):
                data.delete_record(div, entity, i, now=now)
            return {"deleted": list(req.get("ids", []))}
        if op == "split" and entity == "goods_delivery_lines":
            return {"rows": data.split_delivery_line(div, req["id"], req["quantities"], now=now)}
        raise ValueError(f"unknown op {op!r}")


def _add_records(div: data.Division, entity: str, req: dict, now: dt.datetime) -> list:
    records = div.records(entity)
    added = []
    for extra in req.get("records") or [{}] * int(req.get("count", 1)):
        rec = data.make_account(div, now=now) if entity == "accounts" else _record_like(div, records, now)
        for k, v in extra.items():
            rec[k] = _decode(v)
        key = rec.get("ID") or rec["EntryID"]
        records[key] = rec
        added.append(key)
    return added


def _record_like(div: data.Division, records: dict, now: dt.datetime) -> dict:
    """A new record shaped like an existing one: new key, new rowversion (the caller sets the given fields)."""
    template = records[sorted(records)[0]]
    rec = dict(template)
    key_field = "EntryID" if "EntryID" in rec and "ID" not in rec else "ID"
    rec[key_field] = div.new_guid()
    if "Code" in rec:
        rec["Code"] = f"NEW-{len(records) + 1}"
    rec["Created"] = rec["Modified"] = now
    if "Timestamp" in rec:
        rec["Timestamp"] = div.next_timestamp()
    return rec


def _update_records(div: data.Division, entity: str, req: dict, now: dt.datetime) -> list:
    records = div.records(entity)
    changed = []
    for item in req.get("records", []):
        key = item.get("ID") or item["EntryID"]
        location = item.get("StorageLocation") if entity == "goods_delivery_lines" else None
        record = records[f"{key}/{location}" if location else key]
        changes = {k: _decode(v) for k, v in item.items() if k not in ("ID", "EntryID", "StorageLocation")}
        if entity == "accounts" and not changes:
            data.mutate_account(div, record, None, now=now)
        else:
            data.update_record(div, entity, record, changes, now=now)
        if location:  # one row of a split line changed: Exact returns the line's current rows
            data.restamp_delivery_line(div, key, now=now)
        changed.append(key)
    return changed


def _select(spec: EndpointSpec, params: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `$select` fields, checked as Exact checks them, and the endpoint's known fields (name -> type)."""
    select = [s.strip() for s in params.get("$select", "").split(",") if s.strip()]
    if spec.kind in ("sync", "bulk", "deleted") and not select:
        raise ODataError("Please add a $select or a $top=1 statement to the query string.")
    if "*" in select:
        raise ODataError("$select=* is not allowed for this endpoint. Please specify the properties.")
    # Exact's metadata lists every field of the endpoints it has; an endpoint only the registry knows has its fields.
    known = FIELDS.get(FIELD_LIST_FOR.get(spec.path, spec.path)) or dict.fromkeys(spec.selected, "")
    for name in select:
        if name not in known:
            raise ODataError("The request is invalid.")  # Exact gives no detail here
    return select, known


def _mandatory_filter_error(spec: EndpointSpec) -> ODataError:
    return ODataError(
        "This endpoint has mandatory filtering applied. A GET request for this endpoint must have a $filter "
        "parameter with one of the following fields in the url: " + ", ".join(sorted(spec.filter_fields))
    )


def _comparisons(spec: EndpointSpec, filter_text: str) -> list[Comparison]:
    """The `$filter`, parsed, with the endpoint's rules: sync and deleted filter on Timestamp (and EntityType) only;
    regular and bulk endpoints with mandatory filtering need one of their filter fields."""
    if spec.kind in ("regular", "bulk") and spec.filter_fields and not filter_text.strip():
        raise _mandatory_filter_error(spec)
    comparisons = parse_filter(filter_text) if filter_text.strip() else []
    if spec.kind in ("sync", "deleted"):
        allowed = {"Timestamp"} | ({"EntityType"} if spec.kind == "deleted" else set())
        if any(c.field not in allowed or c.trimmed for c in comparisons):
            raise ODataError("This $filter parameter is not supported for this resource")
    elif spec.filter_fields and not any(c.field in spec.filter_fields for c in comparisons):
        raise _mandatory_filter_error(spec)
    return comparisons


def _key_literal(key) -> str:
    """A record's key in its URI: guid'…' for Exact's GUIDs, the number for a numeric key (a division's Code)."""
    return f"guid'{key}'" if isinstance(key, str) else str(key)


def _stale_copies(results: list[dict]) -> list[dict]:
    """Exact can return an ID more than once; the older copy must lose (Exact's sync documentation)."""
    copies = []
    for r in results:
        stale = dict(r)
        if isinstance(stale.get("Timestamp"), (int, str)):  # a number, or text with types_as_text
            stale["Timestamp"] = type(stale["Timestamp"])(int(stale["Timestamp"]) - 1)
        for name in ("Name", "Description"):
            if name in stale:
                stale[name] = "STALE COPY"
        copies.append(stale)
    return copies


def _own_spec(c: SandboxConfig, code: int) -> DivisionSpec:
    """The division's own settings as given in the config (the last given), or none: DivisionSpec(code)."""
    given = [as_spec(d) for d in c.divisions]
    return next((d for d in reversed(given) if d.code == code), DivisionSpec(code))


def _decode(value):
    """Control-API values: ISO dates as {"date": "YYYY-MM-DD"}, everything else as-is."""
    if isinstance(value, dict) and "date" in value:
        return dt.date.fromisoformat(value["date"])
    return value


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState):
        super().__init__(address, SandboxHandler)
        self.state = state

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start_sandbox(config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    """Start a sandbox on a background thread; `server.shutdown()` stops it."""
    server = SandboxServer((host, port), SandboxState(config or SandboxConfig()))
    threading.Thread(target=server.serve_forever, name="exact-sandbox", daemon=True).start()
    return server
