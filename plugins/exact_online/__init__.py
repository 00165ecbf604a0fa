"""Exact Online for Airflow: the hook, its token store and its errors (laid out like an Airflow provider)."""
