"""Exact Online's webhooks into Airflow (#22): the receiver the api-server mounts under `/exact-online-webhooks`.

`receiver.py` (the FastAPI app: Exact's validation POST, signed events into the inbox), `directory.py` (which company
a division is, and its webhook secret), `relay.py` (the inbox's unrelayed events → Airflow asset events). The plugins
manager imports only `exact_online_webhooks_plugin.py` (plugins/.airflowignore).
"""
