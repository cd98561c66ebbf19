#!/usr/bin/env bash
# Starts a PostgreSQL server for the tests on 127.0.0.1 (Debian's postgresql package, installed
# when missing) and prints its URL. A cluster of its own, "mlserve_test" on port 55432, with
# password auth for the test role; started again if it is down. Used by scripts/test.sh.
set -euo pipefail
port="${MLSERVE_TEST_POSTGRES_PORT:-55432}"
if [ "$(id -u)" = 0 ]; then sudo=""; as_postgres="runuser -u postgres --"; else
  sudo="sudo -n"; as_postgres="sudo -n -u postgres"; fi

# Only the URL goes to stdout (the caller captures it): whatever the PostgreSQL tools print goes
# to stderr. No extra descriptor is opened, since the server started here would inherit it and
# keep the caller's capture open.
{
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "== installing postgresql (Debian package) for the prediction log tests" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx mlserve_test; then
  $sudo pg_createcluster "$version" mlserve_test -p "$port" -- --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi
if ! pg_lsclusters -h | awk '$2 == "mlserve_test" {print $4}' | grep -qx online; then
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" mlserve_test start
fi
$as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlserve') THEN
    CREATE ROLE mlserve LOGIN PASSWORD 'mlserve-test' CREATEDB;
  END IF;
END $$;
SQL
} >&2
echo "postgres://mlserve:mlserve-test@127.0.0.1:$port/postgres"
