"""Errors raised by the Exact Online hook. Their texts never contain a token or the client secret."""

from __future__ import annotations

import datetime as dt


class ExactOnlineError(Exception):
    """Base class for everything the hook raises on purpose."""


class ExactApiError(ExactOnlineError):
    """Exact answered with an error that retrying will not fix (400, 401, 403, 404, ...)."""

    def __init__(self, status: int, endpoint: str, message: str, reason: str | None = None):
        self.status, self.endpoint, self.message, self.reason = status, endpoint, message, reason
        text = f"Exact Online answered {status} for {endpoint}: {message}"
        if reason:
            text += f" (Reason: {reason})"
        super().__init__(text)


class ExactTransientError(ExactOnlineError):
    """A reply worth retrying: 5xx, or 429 for the minutely budget. `wait_seconds` overrides the backoff."""

    def __init__(self, status: int, endpoint: str, wait_seconds: float | None = None, message: str | None = None):
        self.status, self.endpoint, self.wait_seconds = status, endpoint, wait_seconds
        # `message`: for a failure without an answer (status 0), e.g. a token endpoint that could not be reached
        super().__init__(message or f"Exact Online answered {status} for {endpoint}")


class ExactDailyLimitReached(ExactOnlineError):
    """The division's daily call budget is spent; nothing more can be read before `reset_at` (UTC)."""

    def __init__(self, division: int, reset_at: dt.datetime | None):
        self.division, self.reset_at = division, reset_at
        when = reset_at.isoformat(timespec="seconds") if reset_at else "the start of the next day"
        super().__init__(f"The daily Exact Online API budget of division {division} is spent; it resets at {when}.")


class ExactAuthError(ExactOnlineError):
    """The OAuth token chain cannot be used. `needs_reauthorisation` means a person must consent again."""

    def __init__(self, message: str, *, needs_reauthorisation: bool = False):
        self.needs_reauthorisation = needs_reauthorisation
        if needs_reauthorisation:
            message += (
                " Re-authorise the app in Exact Online (authorization-code flow), then put the new refresh token in "
                'connection \'exact_online_default\' (its "First refresh token" field, extra "refresh_token") and '
                "clear the stored chain "
                "(the import does that itself when the connection's token differs from the one it started from)."
            )
        super().__init__(message)


RECONNECT_HINT = "reconnect on the settings page (Exact imports, in Airflow's navigation)."


class ExactReconnectRequired(ExactAuthError):
    """Exact refused the token chain for good: the refresh token expired (30 days unused), the consent was revoked,
    or a rotated refresh token came back ("Old refresh token used", which the store's lock exists to prevent).
    Retrying cannot mend it, only a person connecting the company again. A subclass of ExactAuthError, so that the
    import fails at once without retries, as for every other unusable chain."""

    def __init__(self, why: str):
        self.why = why
        self.needs_reauthorisation = True
        ExactOnlineError.__init__(self, f"Exact Online refused the connection ({why}): {RECONNECT_HINT}")


class ExactConsentError(ExactOnlineError):
    """Connecting a company (the authorization-code flow) gave no usable code or tokens. The text tells the person
    what to do; it never contains the code, a token or the client secret."""


class ExactConsentDenied(ExactConsentError):
    """The person chose "Deny" on Exact's consent page (`error=access_denied` in the redirect)."""


class ExactConsentStateMismatch(ExactConsentError):
    """The redirect's `state` is not the one this connect attempt sent: an old or foreign address was pasted, or
    someone tries to slip their own code in (the reason `state` exists)."""


class ExactConsentNoCode(ExactConsentError):
    """The address holds no authorization code (not the address Exact redirected to, or cut off)."""


class ExactCodeRefused(ExactConsentError):
    """Exact's token endpoint refused the authorization code: used before, older than about 3 minutes, or issued for
    another redirect URI."""


class ExactConfigError(ExactApiError):
    """The Airflow connection is set up wrongly (a field is missing or malformed); a person must fix it.

    It names the field and never shows a secret's value. It subclasses ExactApiError, whose meaning it shares
    ("retrying will not fix it"), so that handlers that fail fast on ExactApiError (the import DAG's) do so for it
    too; `status` is 0 because Exact was never asked.
    """

    def __init__(self, conn_id: str, message: str):
        self.status, self.endpoint, self.message, self.reason = 0, "connection", message, None
        self.conn_id = conn_id
        Exception.__init__(self, f"Connection {conn_id!r}: {message}")
