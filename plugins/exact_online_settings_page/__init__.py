"""The "Exact Online imports" page inside the Airflow UI (issue #11).

A FastAPI app mounted by the api-server (`fastapi_apps`) under `/exact-online-imports`, plus a menu entry
(`external_views`) that shows it in an iframe at `/plugin/exact-online-imports`. The plugins manager imports only
`exact_online_settings_page_plugin.py` (see plugins/.airflowignore); the rest of this package is imported from it
as the package `exact_online_settings_page` (the plugins folder is on sys.path).
"""
