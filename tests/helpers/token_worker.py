"""A separate process that uses the hook's token chain: `python token_worker.py CONNINFO START_LINE ROUNDS PAUSE`.

Reports ready at the `StartLine` folder START_LINE and waits until the test releases all workers at once, so that
they hit the store at the same moment; then ROUNDS times: get an access token (refreshing the shared chain when
due) and make one real API call with it, PAUSE seconds apart.
Prints one JSON line with what it saw.
"""

import json
import sys
import time

from waiting import StartLine  # tests/helpers, this script's folder

from exact_online.exceptions import ExactOnlineError
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import PostgresTokenStore

conninfo, start_line, rounds, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
hook = ExactOnlineHook(token_store=PostgresTokenStore.from_conninfo(conninfo))
errors, calls = [], 0
StartLine.ready_then_wait(start_line)
for _ in range(rounds):
    try:
        hook.get_access_token()
        hook.me()
        calls += 1
    except ExactOnlineError as exc:
        errors.append(str(exc))
    hook._access = None  # forget the in-memory token: every round goes through the shared store
    time.sleep(pause)  # the workload's pace, not a wait for anything: the rounds span several token lifetimes
print(json.dumps({"calls": calls, "errors": errors, "token_calls": hook.stats.token_calls}))
