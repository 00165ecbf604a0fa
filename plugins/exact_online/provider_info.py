"""Provider metadata: what Airflow's ProvidersManager reads through the `apache_airflow_provider` entry point.

Since Airflow 3.2 the connection form is described here, declaratively (`conn-fields`, `ui-field-behaviour`), so
that the API server can render Admin -> Connections without importing the hook; the hook methods
`get_connection_form_widgets`/`get_ui_field_behaviour` are deprecated. Keep the keys in kebab-case: this dict is
the runtime form of a provider.yaml.

How the values arrive in the connection extra: the Airflow 3 UI writes each conn-field under its plain name
(`{"division": 123456, "refresh_token": "..."}`); connections made in the Airflow 2 UI used
`extra__exact_online__division`. ExactOnlineHook reads both.
"""

from __future__ import annotations

CONNECTION_TYPE = "exact_online"
HOOK_NAME = "Exact Online"

COUNTRY_HOSTS = (
    "https://start.exactonline.nl",
    "https://start.exactonline.be",
    "https://start.exactonline.de",
    "https://start.exactonline.co.uk",
    "https://start.exactonline.com",
    "https://start.exactonline.fr",
    "https://start.exactonline.es",
)


def get_provider_info() -> dict:
    return {
        # Must equal the distribution name in pyproject.toml: ProvidersManager refuses a mismatch.
        "package-name": "outsmart-exact-online",
        "name": HOOK_NAME,
        "description": "Exact Online REST API: OAuth2 with rotating refresh tokens, paging, rate limits, Sync API.",
        "hooks": [{"integration-name": HOOK_NAME, "python-modules": ["exact_online.hooks.exact_online"]}],
        "connection-types": [
            {
                "hook-class-name": "exact_online.hooks.exact_online.ExactOnlineHook",
                "hook-name": HOOK_NAME,
                "connection-type": CONNECTION_TYPE,
                "ui-field-behaviour": {
                    # "extra" stays visible in the Airflow 3.3 UI whatever this says (its form has no switch for
                    # it), which is as well: the optional tuning extras (timeout, max_attempts, ...) live there.
                    "hidden-fields": ["schema", "port", "extra", "description"],
                    "relabeling": {"host": "Base URL", "login": "Client ID", "password": "Client secret"},
                    "placeholders": {
                        "host": "Your Exact country: " + ", ".join(COUNTRY_HOSTS),
                        "login": "Client ID of the app registered in the Exact App Center",
                        "password": "Client secret of that app",
                    },
                },
                "conn-fields": {
                    "division": {
                        "label": "Division",
                        "description": (
                            "Number of the Exact administration (division) to import, e.g. 123456. It is always "
                            "put in the URL: Exact's CurrentDivision follows whatever the user last opened."
                        ),
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    "refresh_token": {
                        "label": "First refresh token",
                        "description": (
                            "Refresh token from authorising the app (authorization-code flow). Needed for the "
                            "first run and after re-authorising; the import then keeps the rotating token chain "
                            "in its own store. Put a new one here to restart the chain."
                        ),
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "webhook_secret": {
                        "label": "Webhook secret",
                        "description": (
                            "The app's webhook secret from the Exact App Centre (\"Secret used for webhook "
                            "messages\"; not the client secret). Needed only for Exact's webhooks: the import "
                            "refuses every event not signed with it."
                        ),
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                },
            }
        ],
    }
