#!/bin/sh
# One-shot job (temporalio/admin-tools): create and migrate the `temporal` and
# `temporal_visibility` databases on PostgreSQL, then exit 0. Safe to run again on every
# `docker compose up`: each step below is a no-op when already done. Connection settings come
# from the environment temporal-sql-tool reads itself: SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER,
# SQL_PASSWORD. Any failure ends the job non-zero, and compose then starts nothing that needs it.
set -eu

ATTEMPTS=30  # × PAUSE seconds: a bounded wait, then a visible failure
PAUSE=2

# retry COMMAND...: run it until it succeeds, at most $ATTEMPTS times; fail loudly after that.
retry() {
    attempt=1
    until "$@"; do
        if [ "$attempt" -ge "$ATTEMPTS" ]; then
            echo "temporal-schema: giving up after $attempt attempts: $*" >&2
            return 1
        fi
        echo "temporal-schema: not yet ($attempt/$ATTEMPTS): $*" >&2
        attempt=$((attempt + 1))
        sleep "$PAUSE"
    done
}

SCHEMA=/etc/temporal/schema/postgresql/v12

# PostgreSQL over TCP: compose waited for its health check; this also covers a restart.
retry nc -z -w 2 "$SQL_HOST" "$SQL_PORT"

for db in temporal temporal_visibility; do
    # create-database leaves an existing database alone: the postgres plugin treats "already
    # exists" as success (no error to swallow here).
    retry temporal-sql-tool --db "$db" create-database
done

# setup-schema -v 0.0 only creates the version tables (IF NOT EXISTS); update-schema applies
# the versioned steps newer than the recorded version.
temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema -d "$SCHEMA/temporal/versioned"
temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema -d "$SCHEMA/visibility/versioned"
echo "temporal-schema: databases temporal and temporal_visibility are up to date"
