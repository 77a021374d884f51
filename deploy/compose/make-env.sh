#!/bin/sh
# `make env`: write .env for docker compose with random secrets and the build id of the checked
# out commit. An existing .env is left as it is (its secrets are already in the database volume).
set -eu

FILE=${1:-.env}
if [ -f "$FILE" ]; then
    echo "$FILE exists: left as it is"
    exit 0
fi
secret() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}
build=$(git rev-parse --short=12 HEAD 2>/dev/null) || build=dev-$(date -u +%Y%m%d%H%M%S)
umask 077
{
    echo "POSTGRES_PASSWORD=$(secret)"
    echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
    echo "RIG_BUILD_ID=$build"
    echo "RIG_MESSAGE_KEY=$(head -c 32 /dev/urandom | base64)"
} > "$FILE"
echo "wrote $FILE (RIG_BUILD_ID=$build); secure profile: add the TEMPORAL_AUTH_* lines of .env.example"
