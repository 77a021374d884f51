#!/bin/sh
# One-shot job (curlimages/curl): Temporal's own Grafana dashboards — the server's and the
# Core-based SDKs' (the Python SDK is one) — from temporalio/dashboards (MIT) at a pinned
# commit, each checked against its sha256 before Grafana sees it. Usage: fetch-….sh DIR.
# Bump: pick a commit, download both files, put the new commit and sums here.
set -eu

DIR=$1
COMMIT=b5d9a1bc1888f73057f1639495e5773caad783ee
BASE=https://raw.githubusercontent.com/temporalio/dashboards/$COMMIT

fetch() {
    path=$1
    sum=$2
    name=$(basename "$path")
    if [ -f "$DIR/$name" ] && echo "$sum  $DIR/$name" | sha256sum -c - >/dev/null 2>&1; then
        echo "grafana-dashboards: $name is up to date"
        return 0
    fi
    curl --fail --silent --show-error --location --retry 5 --retry-delay 2 --output "$DIR/$name.part" "$BASE/$path"
    echo "$sum  $DIR/$name.part" | sha256sum -c -
    mv "$DIR/$name.part" "$DIR/$name"
    echo "grafana-dashboards: $name fetched"
}

fetch server/server-general.json b1a02a0055083c12bffcb3e8b490aaccbc4e89660eb7c005283dd71b99a668d6
fetch sdk/temporal-core-sdks-otel.json 9fa56a1791bba2dee82bbc4e3773e5054c217e16ac0e2aa5b8b0f2f4b7ba5c30
