"""The divisions the sandbox serves (#21: many companies in one deployment): which ones, their data, their budgets.

Exact serves many divisions ("administraties") to one app: an accountant's licence reaches its clients' divisions
beside its own (beyond.md §4.2; system/Divisions: "Accountants will see both their own divisions and those belonging
to their clients"). Each division has its own data, and its own rate budgets: 60 calls a minute and 5,000 a day per
app per division (reference §3.1, beyond.md §4.1: "divisions do not share a bucket"), some with other numbers
(ossobv saw 100 a minute and 9,000 a day: beyond.md §4.1).

Cheap at scale: a division's data is built (or read back from its file) when it is first used, so fifty divisions
start as fast as one, and a division nobody reads costs nothing. The main division (`SandboxConfig.division`) is
built at the start, as the sandbox always did.

Persistence (`make airflow` restarts): each division in a file of its own beside the state file
(`sandbox.pickle` -> `sandbox.division-3000002.pickle`), written only when it changed; the main division is written
on every save, as before. A division saved before is read back from its file on first use, not at the start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.exact_sandbox import data
from include.exact_sandbox.oauth import DEFAULT_USER


@dataclass(frozen=True)
class DivisionSpec:
    """One division (company, "administratie") the sandbox serves. None: as the SandboxConfig has it (the seed:
    the config's seed plus the division's distance from `division`, so division + i of `companies` has seed + i)."""

    code: int
    seed: int | None = None
    size: int | None = None  # accounts; the other entities scale with it (data.build_division)
    minutely_limit: int | None = None
    daily_limit: int | None = None
    description: str | None = None  # system/Divisions' Description and the division's own account's Name


SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(DivisionSpec))


@dataclass(frozen=True)
class ServedDivision:
    """A division as the sandbox serves it: its DivisionSpec with the config's values where it gave none."""

    code: int
    seed: int
    size: int
    minutely_limit: int
    daily_limit: int
    description: str


def as_spec(given: Any) -> DivisionSpec:
    """A DivisionSpec from a DivisionSpec or a dict of its fields (JSON), checked; ValueError says what is wrong."""
    if isinstance(given, DivisionSpec):
        spec = given
    elif isinstance(given, dict):
        unknown = sorted(set(given) - set(SPEC_FIELDS))
        if unknown or "code" not in given:
            problem = f"{unknown[0]!r} is not one of them" if unknown else "'code' is missing"
            raise ValueError(f"a division has the fields {', '.join(SPEC_FIELDS)}; {problem}")
        spec = DivisionSpec(**given)
    else:
        raise ValueError(f"a division is a DivisionSpec or a dict of its fields, not {type(given).__name__}")
    for name in ("code", "seed", "size", "minutely_limit", "daily_limit"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"division {spec.code!r}: {name} must be a whole number of at least 0, not {value!r}")
    if spec.code < 1:
        raise ValueError(f"a division's code must be a positive whole number, not {spec.code!r}")
    if spec.description is not None and not isinstance(spec.description, str):
        raise ValueError(f"division {spec.code}: description must be a text")
    return spec


def division_specs(c: Any) -> dict[int, ServedDivision]:
    """Every division the SandboxConfig `c` serves, by code, `division` first, every field filled in. Read from the
    config on each use, so that a change through /_sandbox/config or /_sandbox/limits applies at once."""
    if isinstance(c.companies, bool) or not isinstance(c.companies, int) or c.companies < 1:
        raise ValueError(f"companies must be a whole number of at least 1, not {c.companies!r}")
    if not isinstance(c.divisions, list):
        raise ValueError("divisions must be a list of divisions, e.g. [{'code': 3000002, 'size': 50}]")
    given = {code: DivisionSpec(code) for code in range(c.division, c.division + c.companies)}
    for item in c.divisions:
        spec = as_spec(item)
        given[spec.code] = spec  # a division given twice: the later one counts
    return {code: _filled(c, spec) for code, spec in given.items()}


def _filled(c: Any, spec: DivisionSpec) -> ServedDivision:
    seed = c.seed + spec.code - c.division if spec.seed is None else spec.seed
    if spec.description is not None:
        description = spec.description
    else:
        description = data.DIVISION_NAME if spec.code == c.division else data.company_name(seed)
    return ServedDivision(
        spec.code,
        seed=seed,
        size=c.size if spec.size is None else spec.size,
        minutely_limit=c.minutely_limit if spec.minutely_limit is None else spec.minutely_limit,
        daily_limit=c.daily_limit if spec.daily_limit is None else spec.daily_limit,
        description=description,
    )


def served(codes) -> str:
    """The served divisions' codes for an error message: the first five."""
    codes = list(codes)
    return ", ".join(map(str, codes[:5])) + (f", ... ({len(codes)} divisions)" if len(codes) > 5 else "")


def check_config(c: Any) -> None:
    """The divisions, the users' divisions and their first refresh tokens make sense together; ValueError says why."""
    codes = division_specs(c)
    tokens = [c.initial_refresh_token]
    for name, user in (c.users or {}).items():
        if not isinstance(user, dict):
            raise ValueError(f"user {name!r}: give {{'password': ..., 'divisions': [...]}}, not {user!r}")
        for code in user.get("divisions") or ():
            if code not in codes:
                raise ValueError(
                    f"user {name!r} reaches division {code!r}, not one the sandbox serves ({served(codes)})"
                )
        if user.get("initial_refresh_token") and name != DEFAULT_USER:
            tokens.append(user["initial_refresh_token"])
    if len(set(tokens)) != len(tokens):
        raise ValueError("two users have the same initial_refresh_token; a refresh token belongs to one consent")


@dataclass
class RateWindows:
    """A division's minutely and daily windows: (the window's reset, epoch seconds; the calls counted in it)."""

    minute: tuple[float, int] = (0.0, 0)
    day: tuple[float, int] = (0.0, 0)


def window_resets(c: Any, now: float) -> tuple[float, float]:
    """When the current minute and day windows end: fixed calendar windows, as Exact's (reference §3.1)."""
    minute_reset = (math.floor(now / c.minute_seconds) + 1) * c.minute_seconds
    day = c.day_seconds or 86400.0  # None: the real UTC day, as Exact
    return minute_reset, (math.floor(now / day) + 1) * day


def _fingerprint(div: data.Division) -> tuple:
    """What changes when a division's records do (new rowversions, records added or removed, a move, a purge)."""
    counts = sum(len(v) for v in vars(div).values() if isinstance(v, (dict, list)))
    declared = sum(len(v) for v in getattr(div, "declared", {}).values())
    return (div.rowversion, div.move_date, len(div.deleted), counts, declared)


class Divisions:
    """The served divisions' data (built or read back on first use) and rate windows."""

    def __init__(self, config: Any):
        self.config = config
        self.data: dict[int, data.Division] = {}  # the divisions built or read back so far
        self.windows: dict[int, RateWindows] = {}  # not persisted: a restart opens new windows, as before
        self._files: dict[int, Path] = {}  # divisions saved by an earlier run, not read back yet
        self._saved: dict[int, tuple] = {}  # the fingerprint of each division's data as last saved or read
        self._changed: set[int] = set()  # changed through the control API since the last save
        self._build_locks: dict[int, threading.Lock] = {}
        self._specs: tuple[tuple, dict[int, ServedDivision]] | None = None

    def specs(self) -> dict[int, ServedDivision]:
        """division_specs of the config, worked out again only when a setting they depend on changed (every call
        asks, several times)."""
        c = self.config
        key = (c.division, c.companies, c.seed, c.size, c.minutely_limit, c.daily_limit, repr(c.divisions))
        if self._specs is None or self._specs[0] != key:
            self._specs = (key, division_specs(c))
        return self._specs[1]

    @property
    def main(self) -> int:
        return self.config.division

    def get(self, code: int) -> data.Division:
        """The division's data: built, or read back from its file, on first use. KeyError for a division the
        sandbox does not serve and never saved. Takes no state lock: other divisions are served meanwhile."""
        div = self.data.get(code)
        if div is not None:
            return div
        with self._build_locks.setdefault(code, threading.Lock()):
            div = self.data.get(code)
            if div is None:
                div = self._read_back(code) or self._build(code)
                self.data[code] = div
        return div

    def _build(self, code: int) -> data.Division:
        spec = self.specs()[code]
        c = self.config
        return data.build_division(
            code,
            seed=spec.seed,
            size=spec.size,
            now=dt.datetime.now(dt.UTC),
            accounts_only=c.accounts_only,
            split_delivery_lines=c.split_delivery_lines,
            name=spec.description,
        )

    def _read_back(self, code: int) -> data.Division | None:
        path = self._files.pop(code, None)
        if path is None or not path.exists():
            return None
        with open(path, "rb") as f:
            div = pickle.load(f)  # our own file, written by save() below
        self._saved[code] = _fingerprint(div)
        return div

    def changed(self, code: int) -> None:
        """The control API changed the division: write it at the next save."""
        self._changed.add(code)

    # ---- rate limits: per app per division ---------------------------------------------------------------------
    def take_call(self, code: int, now: float) -> tuple[int, dict[str, str]]:
        """Count one call against the division's budgets. Returns (status, headers): 200 or 429."""
        spec = self.specs()[code]
        w = self.windows.setdefault(code, RateWindows())
        minute_reset, day_reset = window_resets(self.config, now)
        if w.minute[0] != minute_reset:
            w.minute = (minute_reset, 0)
        if w.day[0] != day_reset:
            w.day = (day_reset, 0)
        minute_used, day_used = w.minute[1], w.day[1]
        daily = {
            "X-RateLimit-Limit": str(spec.daily_limit),
            "X-RateLimit-Remaining": str(max(spec.daily_limit - day_used - 1, 0)),
            "X-RateLimit-Reset": str(int(day_reset * 1000)),
        }
        minutely = {
            "X-RateLimit-Minutely-Limit": str(spec.minutely_limit),
            "X-RateLimit-Minutely-Remaining": str(max(spec.minutely_limit - minute_used - 1, 0)),
            "X-RateLimit-Minutely-Reset": str(int(minute_reset * 1000)),
        }
        if day_used >= spec.daily_limit:
            daily["X-RateLimit-Remaining"] = "0"
            return 429, daily  # only the exceeded limit's headers, as Exact does
        if minute_used >= spec.minutely_limit:
            minutely["X-RateLimit-Minutely-Remaining"] = "0"
            return 429, minutely
        w.minute = (minute_reset, minute_used + 1)
        w.day = (day_reset, day_used + 1)
        return 200, {**daily, **minutely}

    def usage(self, code: int, now: float) -> dict:
        """The division's limits and what its current windows have counted (0 for a window not opened yet)."""
        spec = self.specs()[code]
        w = self.windows.get(code, RateWindows())
        minute_reset, day_reset = window_resets(self.config, now)
        return {
            "minutely_limit": spec.minutely_limit,
            "daily_limit": spec.daily_limit,
            "minute_used": w.minute[1] if w.minute[0] == minute_reset else 0,
            "day_used": w.day[1] if w.day[0] == day_reset else 0,
        }

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, state_path: str | os.PathLike, lock: threading.RLock) -> dict[int, str]:
        """Write each division that changed since it was built, read back or saved (the main one always) to its own
        file beside `state_path`. Each is pickled under `lock` (the state's), one at a time, so that the API answers
        between two divisions. Returns code -> file name of every saved division, for the state file."""
        state_path = Path(state_path)
        for code, path in list(self._files.items()):
            if path != division_file(state_path, code):
                self.get(code)  # saved elsewhere (a save to another path): read it, so that it is written here
        for code in list(self.data):
            target = division_file(state_path, code)
            with lock:
                fingerprint = _fingerprint(self.data[code])
                if code != self.main and code not in self._changed and self._saved.get(code) == fingerprint:
                    if target.exists():
                        continue
                blob = pickle.dumps(self.data[code])
                self._changed.discard(code)  # a change after this point is written next time
            _write_atomically(target, blob)
            self._saved[code] = fingerprint
        return {code: division_file(state_path, code).name for code in [*self.data, *self._files]}

    def restore(self, state_path: str | os.PathLike, names: dict[int, str]) -> None:
        """After the state file was read: its divisions are read back from their files on first use."""
        folder = Path(state_path).parent
        self.data = {code: div for code, div in self.data.items() if code not in names}
        self._files = {code: folder / name for code, name in names.items()}
        self._saved.clear()

    def adopt(self, div: data.Division) -> None:
        """A division from a state file of the single-division sandbox (the whole division in the state file)."""
        self.data[div.division] = div
        self._files.pop(div.division, None)


def division_file(state_path: Path, code: int) -> Path:
    """`sandbox.pickle` -> `sandbox.division-3000002.pickle` (a state path without a suffix: `state.division-…`)."""
    return state_path.with_name(f"{state_path.stem}.division-{code}{state_path.suffix}")


def _write_atomically(path: Path, blob: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
