# The Airflow image for docker-compose.yaml: the official image plus this project's pinned requirements.
FROM apache/airflow:3.3.2
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
