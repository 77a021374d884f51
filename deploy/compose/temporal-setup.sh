#!/bin/sh
# One-shot job (temporalio/admin-tools): once the server answers, make sure the namespace (with
# its retention) and every search attribute of the rig exist, then exit 0. Safe to run again: what exists is left
# alone, what exists with another type fails the job. The `temporal` CLI reads TEMPORAL_ADDRESS
# and TEMPORAL_NAMESPACE itself. Any failure ends the job non-zero (e.g. an 11th Keyword
# attribute: SQL visibility has 10 Keyword columns), and compose then starts no worker.
set -eu

ATTEMPTS=30  # × PAUSE seconds: a bounded wait, then a visible failure
PAUSE=2
NAMESPACE=${TEMPORAL_NAMESPACE:-default}

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
RETENTION=30d

ensure_namespace() {
    if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
        echo "temporal-setup: namespace $NAMESPACE exists"
        temporal operator namespace update --namespace "$NAMESPACE" --retention "$RETENTION"
    else
        temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
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

retry temporal operator cluster health
retry ensure_namespace
retry namespace_ready

# Every search attribute of protocol/contract.py SEARCH_ATTRIBUTES, as NAME=TYPE
# (tests/test_compose.py checks this list against the contract).
for attribute in OrderState=Keyword Symbol=Keyword Side=Keyword Bucket=Keyword Account=Keyword RiskMode=Keyword IntentKind=Keyword TradingState=Keyword Venue=Keyword; do
    ensure_search_attribute "${attribute%%=*}" "${attribute#*=}"
done
echo "temporal-setup: namespace $NAMESPACE and its search attributes are ready"
