"""A separate process that uses the hook's token chain: `python token_worker.py CONNINFO START_AT ROUNDS PAUSE`.

Waits until START_AT (epoch seconds) so that all workers hit the store at the same moment, then ROUNDS times:
get an access token (refreshing the shared chain when due) and make one real API call with it.
Prints one JSON line with what it saw.
"""

import json
import sys
import time

from exact_online.exceptions import ExactOnlineError
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import PostgresTokenStore

conninfo, start_at, rounds, pause = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
hook = ExactOnlineHook(token_store=PostgresTokenStore.from_conninfo(conninfo))
errors, calls = [], 0
time.sleep(max(start_at - time.time(), 0))
for _ in range(rounds):
    try:
        hook.get_access_token()
        hook.me()
        calls += 1
    except ExactOnlineError as exc:
        errors.append(str(exc))
    hook._access = None  # forget the in-memory token: every round goes through the shared store
    time.sleep(pause)
print(json.dumps({"calls": calls, "errors": errors, "token_calls": hook.stats.token_calls}))
