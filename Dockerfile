# The Airflow image for docker-compose.yaml: the official image plus this project's pinned requirements.
FROM apache/airflow:3.3.2
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
# plugins/exact_online as a distribution, so that Airflow finds its provider entry point (the "Exact Online"
# connection type). Editable: it points at /opt/airflow/plugins, which docker-compose.yaml mounts over the copy,
# so the code that runs is the mounted one, as before. --no-deps: the requirements above are the dependencies.
COPY --chown=airflow:root pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:root plugins /opt/airflow/plugins
RUN pip install --no-cache-dir --no-deps -e /opt/airflow
