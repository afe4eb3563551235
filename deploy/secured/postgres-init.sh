#!/bin/sh
# First start of the secured profile's PostgreSQL (mounted into /docker-entrypoint-initdb.d: the
# image runs it once, on an empty data volume, as the postgres user against its socket-only server).
# The orders table of ./db (mounted at /db), then the producer's own role with the rights README
# "Least privilege" lists and no more: LOGIN REPLICATION, SELECT on the table, pg_read_all_stats.
# The publication is made here, by the table's owner, because the role cannot make it.
set -eu

sql_dir=${ORDERS_SQL_DIR:-/db}
export CAPTURE_PASSWORD_FILE="${SECURED_CERTS:-/certs}/postgres/capture_password"

run_psql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

for file in "$sql_dir"/*.sql; do
  echo "postgres-init: running $file"
  run_psql -f "$file"
done

# psql reads the password itself (backquotes), so it is on no command line.
echo "postgres-init: creating role orders_capture"
run_psql <<'SQL'
\set capture_password `cat "$CAPTURE_PASSWORD_FILE"`
CREATE ROLE orders_capture LOGIN REPLICATION PASSWORD :'capture_password';
GRANT SELECT ON "2025em1100506_orders" TO orders_capture;
GRANT pg_read_all_stats TO orders_capture;
CREATE PUBLICATION "2025em1100506_orders_pub" FOR TABLE "2025em1100506_orders";
SQL
