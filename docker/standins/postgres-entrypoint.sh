#!/bin/sh
# First start on an empty volume: initdb with POSTGRES_USER as superuser (password auth over the network), create
# POSTGRES_DB, run the init scripts; then run the server as the postgres user in the foreground.
set -eu
DATA=/var/lib/postgresql/data
mkdir -p "$DATA" /var/run/postgresql
chown -R postgres:postgres "$DATA" /var/run/postgresql
if [ ! -s "$DATA/PG_VERSION" ]; then
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
  chown postgres "$password_file"
  runuser -u postgres -- initdb -D "$DATA" -U "$POSTGRES_USER" --pwfile="$password_file" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
  rm -f "$password_file"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$DATA/pg_hba.conf"
  runuser -u postgres -- pg_ctl -D "$DATA" -o "-c listen_addresses=''" -w start
  runuser -u postgres -- psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
  for script in /docker-entrypoint-initdb.d/*.sql; do
    [ -e "$script" ] && runuser -u postgres -- psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$script"
  done
  runuser -u postgres -- pg_ctl -D "$DATA" -m fast -w stop
fi
exec runuser -u postgres -- postgres -D "$DATA" -c listen_addresses='*'
