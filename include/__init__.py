"""Project code that is neither a DAG nor an Airflow plugin: the sandbox and the import pipeline."""
