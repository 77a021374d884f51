#!/bin/sh
# One-shot job (temporalio/admin-tools): once the server answers, make sure the namespace (with
# its retention) and every search attribute of the rig exist, then each desk's namespace and its
# Nexus endpoint (desks.list beside this script), then exit 0. Safe to run again: what exists is left
# alone, what exists with another type fails the job, an endpoint aimed elsewhere is re-aimed. The
# `temporal` CLI reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE itself; RIG_TASK_QUEUE is the
# worker's (the desks' endpoints target it). Any failure ends the job non-zero (e.g. an 11th
# Keyword attribute: SQL visibility has 10 Keyword columns), and compose then starts no worker.
set -eu

ATTEMPTS=30  # × PAUSE seconds: a bounded wait, then a visible failure
PAUSE=2
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
TASK_QUEUE=${RIG_TASK_QUEUE:?set RIG_TASK_QUEUE to the worker's: the desks' endpoints target it}
# `namespace endpoint` per line, written from config/desks.yaml by `make compose-desks`.
DESKS=$(dirname "$0")/desks.list

# retry COMMAND...: run it until it succeeds, at most $ATTEMPTS times; fail loudly after that.
retry() {
    attempt=1
    until "$@"; do
        if [ "$attempt" -ge "$ATTEMPTS" ]; then
            echo "temporal-setup: giving up after $attempt attempts: $*" >&2
            return 1
        fi
        echo "temporal-setup: not yet ($attempt/$ATTEMPTS): $*" >&2
        attempt=$((attempt + 1))
        sleep "$PAUSE"
    done
}

# How long the server keeps a closed workflow's history (an order's audit trail in the UI): 30
# days covers month-end reconciliation and disputes while keeping the database small; anything
# longer is archival's job (README "Retention and archival"). Set on an existing namespace too.
RETENTION_DAYS=30

# ensure_namespace NAME: create it with the retention, or set the retention where it differs.
ensure_namespace() {
    if described=$(temporal operator namespace describe --namespace "$1" --output json 2>/dev/null); then
        if printf '%s\n' "$described" | grep -Eq "\"workflowExecutionRetentionTtl\": *\"$((RETENTION_DAYS * 86400))s\""; then
            echo "temporal-setup: namespace $1 exists (retention ${RETENTION_DAYS}d)"
        else
            temporal operator namespace update --namespace "$1" --retention "${RETENTION_DAYS}d"
        fi
    else
        temporal operator namespace create --namespace "$1" --retention "${RETENTION_DAYS}d"
    fi
}

# ensure_endpoint NAME DESK: the desk's Nexus endpoint, targeting the rig's namespace and the
# orders' task queue the rig's worker polls; created, or re-aimed when it targets anything else.
ensure_endpoint() {
    target="\"worker\":{\"namespace\":\"$NAMESPACE\",\"taskQueue\":\"$TASK_QUEUE\"}"
    description="The rig's desk API for desk $2 (accounts: config/desks.yaml)"
    if found=$(temporal operator nexus endpoint get --name "$1" --output json 2>/dev/null); then
        if printf '%s\n' "$found" | tr -d ' \t\n' | grep -Fq "$target"; then
            echo "temporal-setup: endpoint $1 exists (-> $NAMESPACE/$TASK_QUEUE)"
        else
            temporal operator nexus endpoint update --name "$1" --target-namespace "$NAMESPACE" --target-task-queue "$TASK_QUEUE" --description "$description"
        fi
    else
        temporal operator nexus endpoint create --name "$1" --target-namespace "$NAMESPACE" --target-task-queue "$TASK_QUEUE" --description "$description"
    fi
}

# ensure_search_attribute NAME TYPE: create it unless it is registered (with that type).
ensure_search_attribute() {
    name=$1
    type=$2
    case "$type" in
        Keyword) enum=KEYWORD ;;
        Text) enum=TEXT ;;
        Int) enum=INT ;;
        Double) enum=DOUBLE ;;
        Bool) enum=BOOL ;;
        Datetime) enum=DATETIME ;;
        KeywordList) enum=KEYWORD_LIST ;;
        *) echo "temporal-setup: unknown search attribute type $type" >&2; return 1 ;;
    esac
    registered=$(temporal operator search-attribute list --namespace "$NAMESPACE" --output json)
    if echo "$registered" | grep -Eq "\"$name\": *\"INDEXED_VALUE_TYPE_$enum\""; then
        echo "temporal-setup: search attribute $name ($type) exists"
    elif echo "$registered" | grep -Eq "\"$name\":"; then
        echo "temporal-setup: search attribute $name exists with a type other than $type" >&2
        return 1
    else
        temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"
    fi
}

# A namespace just created answers "not found" until the server's namespace cache has it.
namespace_ready() {
    temporal operator search-attribute list --namespace "$NAMESPACE" >/dev/null
}

# The desk list, checked whole before anything is changed.
if [ ! -r "$DESKS" ]; then
    echo "temporal-setup: no desk list at $DESKS (make compose-desks writes it)" >&2
    exit 1
fi
while read -r desk endpoint extra; do
    case $desk in '' | '#'*) continue ;; esac
    if [ -z "$endpoint" ] || [ -n "$extra" ]; then
        echo "temporal-setup: $DESKS: '$desk $endpoint $extra' is not 'namespace endpoint'" >&2
        exit 1
    fi
    if [ "$desk" = "$NAMESPACE" ]; then
        echo "temporal-setup: desk namespace $desk is the rig's own: a desk needs a namespace of its own" >&2
        exit 1
    fi
done <"$DESKS"

retry temporal operator cluster health
retry ensure_namespace "$NAMESPACE"
retry namespace_ready

# Every search attribute of protocol/contract.py SEARCH_ATTRIBUTES, as NAME=TYPE
# (tests/test_compose.py checks this list against the contract).
for attribute in OrderState=Keyword Symbol=Keyword Side=Keyword Bucket=Keyword Account=Keyword RiskMode=Keyword IntentKind=Keyword TradingState=Keyword Venue=Keyword; do
    ensure_search_attribute "${attribute%%=*}" "${attribute#*=}"
done
echo "temporal-setup: namespace $NAMESPACE and its search attributes are ready"

# Each desk: its namespace (same retention) and its endpoint into the rig.
desks=0
while read -r desk endpoint _; do
    case $desk in '' | '#'*) continue ;; esac
    retry ensure_namespace "$desk"
    retry ensure_endpoint "$endpoint" "$desk"
    desks=$((desks + 1))
done <"$DESKS"
echo "temporal-setup: $desks desk(s) reach the rig through their endpoints ($DESKS)"
