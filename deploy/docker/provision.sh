#!/bin/bash
# One-shot provisioning for deploy/compose (image target `provision`). Idempotent: run it on every
# `docker compose up`; it creates only what is missing and never replaces a key or password.
#
#   trellis-provision secrets     generate what is missing under $SECRETS_ROOT (before PostgreSQL):
#                                 postgres/password, <service>/db-password for every other
#                                 directory there, and for the services in $SIGNING_KEY_SERVICES
#                                 <service>/keys/<kid>.pem (Ed25519) plus <service>/active_kid
#   trellis-provision databases   for every <service>/db-password: role trellis_<service> (LOGIN,
#                                 nothing else) owning database trellis_<service>, password synced
#
# Each directory under $SECRETS_ROOT is one volume, mounted only into the container that needs it,
# so a service can read its own secrets and no other's. `secrets` runs as root to hand each file
# to the user that reads it (uid 999: postgres in the postgres image; 10001: Trellis images).
set -euo pipefail

SECRETS_ROOT=${SECRETS_ROOT:-/secrets}
SIGNING_KEY_SERVICES=${SIGNING_KEY_SERVICES:-users}
POSTGRES_UID=${POSTGRES_UID:-999}
SERVICE_UID=${SERVICE_UID:-10001}
PGHOST=${PGHOST:-postgres}
PGPORT=${PGPORT:-5432}

say() { echo "trellis-provision: $*"; }
die() { echo "trellis-provision: $*" >&2; exit 1; }

# Directories under $SECRETS_ROOT other than postgres: one per service.
services() {
  local dir name
  for dir in "$SECRETS_ROOT"/*/; do
    [[ -d $dir ]] || continue
    name=$(basename "$dir")
    [[ $name == postgres ]] && continue
    [[ $name =~ ^[a-z][a-z0-9_]{0,30}$ ]] || die "unexpected directory name $name in $SECRETS_ROOT"
    echo "$name"
  done
}

# Writes stdin to FILE (mode 0400, owner UID) unless FILE exists with content.
write_once() {
  local file=$1 uid=$2
  if [[ -s $file ]]; then
    cat > /dev/null
    return 0
  fi
  local tmp="$file.tmp.$$"
  (umask 077 && cat > "$tmp")
  chown "$uid:$uid" "$tmp"
  chmod 0400 "$tmp"
  mv -f "$tmp" "$file"
  say "created $file"
}

new_password() { openssl rand -base64 33 | tr -d '\n/+='; }

generate_secrets() {
  [[ -d $SECRETS_ROOT/postgres ]] || die "$SECRETS_ROOT/postgres is missing (mount the postgres-secrets volume)"
  chown "$POSTGRES_UID:$POSTGRES_UID" "$SECRETS_ROOT/postgres"
  chmod 0700 "$SECRETS_ROOT/postgres"
  new_password | write_once "$SECRETS_ROOT/postgres/password" "$POSTGRES_UID"

  local service dir kid
  for service in $(services); do
    dir="$SECRETS_ROOT/$service"
    new_password | write_once "$dir/db-password" "$SERVICE_UID"
    if [[ " $SIGNING_KEY_SERVICES " == *" $service "* ]]; then
      mkdir -p "$dir/keys"
      if ! compgen -G "$dir/keys/*.pem" > /dev/null; then
        kid="k-$(date -u +%Y%m%d)-$(openssl rand -hex 2)"
        openssl genpkey -algorithm ed25519 | write_once "$dir/keys/$kid.pem" "$SERVICE_UID"
        rm -f "$dir/active_kid"
        echo "$kid" | write_once "$dir/active_kid" "$SERVICE_UID"
      fi
      [[ -s $dir/active_kid ]] || die "$dir/active_kid is missing although $dir/keys holds keys"
      chown "$SERVICE_UID:$SERVICE_UID" "$dir/keys"
      chmod 0500 "$dir/keys"
    fi
    chown "$SERVICE_UID:$SERVICE_UID" "$dir"
    chmod 0500 "$dir"
  done
}

provision_databases() {
  export PGHOST PGPORT PGUSER=postgres PGDATABASE=postgres PGCONNECT_TIMEOUT=10
  PGPASSWORD=$(<"$SECRETS_ROOT/postgres/password")
  export PGPASSWORD
  local service
  for service in $(services); do
    [[ -s $SECRETS_ROOT/$service/db-password ]] || continue
    # psql variables quote identifiers (:"x") and literals (:'x'); the password is read by psql
    # itself (backticks), so it never appears on a command line.
    psql -X -q -v ON_ERROR_STOP=1 -v role="trellis_$service" -v db="trellis_$service" <<SQL
\set password \`cat $SECRETS_ROOT/$service/db-password\`
SELECT format('CREATE ROLE %I', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
ALTER DATABASE :"db" OWNER TO :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
    say "database trellis_$service ready (owner trellis_$service)"
  done
}

case "${1:-}" in
  secrets) generate_secrets ;;
  databases) provision_databases ;;
  *)
    echo "usage: trellis-provision secrets|databases" >&2
    exit 64
    ;;
esac
