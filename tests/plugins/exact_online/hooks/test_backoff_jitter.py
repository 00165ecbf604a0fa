"""Backoff jitter: transient errors are retried after a random wait within the exponential step (and never more
than MAX_BACKOFF_SECONDS); waits for a rate-limit reset end at the reset plus at most a small spread.

No HTTP: the hook's injected `sleep`, `clock` and `rng` make every wait visible and every run deterministic.
"""

from __future__ import annotations

import json
import random

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from exact_online.exceptions import ExactTransientError
from exact_online.hooks.exact_online import MAX_BACKOFF_SECONDS, RESET_SPREAD_SECONDS, ExactOnlineHook
from exact_online.token_store import MemoryTokenStore
from tests.helpers.fake_time import FakeTime


def make_hook(monkeypatch, rng, *, backoff_seconds=2, max_attempts=8, fake_time=None) -> ExactOnlineHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT",
        json.dumps(
            {
                "conn_type": "exact_online",
                "host": "https://start.exactonline.nl",
                "login": "client-id",
                "password": "client-secret",
                "extra": {
                    "division": 123456,
                    "refresh_token": "rt",
                    "backoff_seconds": backoff_seconds,
                    "max_attempts": max_attempts,
                },
            }
        ),
    )
    fake_time = fake_time or FakeTime(1_800_000_000.0)
    hook = ExactOnlineHook(token_store=MemoryTokenStore(), sleep=fake_time.sleep, clock=fake_time.clock, rng=rng)
    monkeypatch.setattr(hook, "get_access_token", lambda: "access-token")
    return hook


def always_503(hook, monkeypatch) -> None:
    def get_once(url, endpoint):
        hook.stats.api_calls += 1
        raise ExactTransientError(503, endpoint)

    monkeypatch.setattr(hook, "_get_once", get_once)


def steps(backoff_seconds: float, waits: int) -> list[float]:
    """The exponential steps without jitter: the upper bound of each wait."""
    return [min(backoff_seconds * 2**i, MAX_BACKOFF_SECONDS) for i in range(waits)]


def retry_waits(monkeypatch, rng, **options) -> list[float]:
    fake_time = FakeTime(1_800_000_000.0)
    hook = make_hook(monkeypatch, rng, fake_time=fake_time, **options)
    always_503(hook, monkeypatch)
    with pytest.raises(ExactTransientError):
        hook._get_json("https://start.exactonline.nl/api/v1/123456/crm/Accounts", "crm/Accounts")
    assert hook.stats.api_calls == options.get("max_attempts", 8)
    assert hook.stats.retries == len(fake_time.sleeps)
    return fake_time.sleeps


def test_transient_waits_vary_within_the_upper_half_of_each_step_and_stay_capped(monkeypatch):
    # backoff 2 s, 8 tries: steps 2, 4, 8, 16, 32, then 60 (capped) twice.
    upper = steps(2, 7)
    assert upper == [2, 4, 8, 16, 32, 60, 60]
    runs = [retry_waits(monkeypatch, random.Random(seed).random) for seed in range(20)]
    for waits in runs:
        assert len(waits) == 7
        for wait, step in zip(waits, upper, strict=True):
            assert step / 2 <= wait <= step <= MAX_BACKOFF_SECONDS
    # The waits really vary: per retry, twenty hooks drew twenty different waits, spread over the half step.
    for i, step in enumerate(upper):
        drawn = [waits[i] for waits in runs]
        assert len(set(drawn)) == len(runs)
        assert max(drawn) - min(drawn) > step / 4
    # ... and the same random source gives the same waits (the tests stay deterministic).
    assert retry_waits(monkeypatch, random.Random(3).random) == runs[3]


def test_the_bounds_are_the_half_step_and_the_step(monkeypatch):
    assert retry_waits(monkeypatch, lambda: 0.0) == [s / 2 for s in steps(2, 7)]
    top = retry_waits(monkeypatch, lambda: 1 - 1e-12)
    assert top == pytest.approx(steps(2, 7)) and all(w < s for w, s in zip(top, steps(2, 7), strict=True))


def test_the_cap_holds_for_a_large_backoff(monkeypatch):
    waits = retry_waits(monkeypatch, random.Random(1).random, backoff_seconds=45, max_attempts=5)
    assert len(waits) == 4
    assert all(MAX_BACKOFF_SECONDS / 2 <= w <= MAX_BACKOFF_SECONDS for w in waits[1:])
    assert 22.5 <= waits[0] <= 45


def response(status: int, headers: dict[str, str], body: dict | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers = CaseInsensitiveDict(headers)
    r._content = json.dumps(body if body is not None else {}).encode()
    r.reason = "Too Many Requests" if status == 429 else "OK"
    return r


class FakeSession:
    def __init__(self, replies: list[requests.Response]):
        self.replies = replies

    def get(self, url, headers=None, timeout=None):
        return self.replies.pop(0)


def serve(hook, monkeypatch, *replies: requests.Response) -> None:
    """The hook's session answers these replies, in order."""
    session = FakeSession(list(replies))
    monkeypatch.setattr(hook, "get_conn", lambda *a, **k: session)


def minute_headers(reset_s: float, remaining: int) -> dict[str, str]:
    return {
        "X-RateLimit-Minutely-Limit": "60",
        "X-RateLimit-Minutely-Remaining": str(remaining),
        "X-RateLimit-Minutely-Reset": str(int(reset_s * 1000)),
    }


@pytest.mark.parametrize("seed", range(10))
def test_a_429_waits_until_the_reset_plus_at_most_the_small_spread(monkeypatch, seed):
    fake_time = FakeTime(1_800_000_000.0)
    hook = make_hook(monkeypatch, random.Random(seed).random, fake_time=fake_time)
    reset = fake_time.now + 10  # Exact: the minute's budget is back in 10 s
    ok = response(200, minute_headers(reset + 60, 59), {"d": {"results": [{"ID": 1}]}})
    serve(hook, monkeypatch, response(429, minute_headers(reset, 0)), ok)
    assert hook._get_json("https://start.exactonline.nl/api/v1/123456/crm/Accounts", "crm/Accounts") == {
        "d": {"results": [{"ID": 1}]}
    }
    [wait] = fake_time.sleeps  # one wait: the retry found the clock past the reset, so no second wait
    assert 10.05 <= wait <= 10.05 + RESET_SPREAD_SECONDS  # never before the reset; not a backoff step
    assert hook.stats.seconds_waited_for_limits == wait and hook.stats.rate_limit_sleeps == 1


def test_the_reset_spread_varies_but_never_starts_early(monkeypatch):
    waits = []
    for seed in range(20):
        fake_time = FakeTime(1_800_000_000.0)
        hook = make_hook(monkeypatch, random.Random(seed).random, fake_time=fake_time)
        # A reply that spends the minute's budget: the next call waits for the reset before it is made.
        spent = response(200, minute_headers(fake_time.now + 5, 0), {"d": {"results": []}})
        fresh = response(200, minute_headers(fake_time.now + 65, 59), {"d": {"results": []}})
        serve(hook, monkeypatch, spent, fresh)
        for _ in range(2):
            hook._get_json("https://start.exactonline.nl/api/v1/123456/crm/Accounts", "crm/Accounts")
        [wait] = fake_time.sleeps
        waits.append(wait)
    assert all(5.05 <= w <= 5.05 + RESET_SPREAD_SECONDS for w in waits)
    assert len(set(waits)) == len(waits)  # spread, so the processes sharing a division do not all call at once
