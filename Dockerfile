# The rig's worker image: the same entry point the tests start (`python -m worker`).
FROM python:3.11-slim
WORKDIR /rig
COPY pyproject.toml README.md ./
COPY domain domain
COPY config config
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY scenarios scenarios
COPY cli cli
COPY bench bench
RUN pip install --no-cache-dir .
ENV TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default \
    RIG_TASK_QUEUE=risk-rig \
    RIG_LOG_FORMAT=json \
    RIG_METRICS_PORT=9464
EXPOSE 9464
STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
