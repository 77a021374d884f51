# The rig's worker image: the same entry point the tests start (`python -m worker`).
# The whole build context goes in (.dockerignore keeps out local state, caches and tests), and
# pip installs exactly the packages pyproject.toml lists: a package missing there is missing
# here too, and tests/test_compose.py rebuilds this file set and imports every module to see it.
FROM python:3.11-slim
COPY . /src
RUN pip install --no-cache-dir /src
# Run from an empty directory, so only the installed packages are importable (not /src).
WORKDIR /rig
RUN useradd --system --no-create-home --uid 10001 rig
USER rig
ENV TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default \
    RIG_TASK_QUEUE=risk-rig \
    RIG_LOG_FORMAT=json \
    RIG_METRICS_PORT=9464
EXPOSE 9464
STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
