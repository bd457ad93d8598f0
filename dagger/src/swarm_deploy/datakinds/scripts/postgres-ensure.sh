set -eu
role=$1; shift
export PGPASSWORD="$(cat /run/secrets/postgres_admin)" PGUSER=postgres PGDATABASE=postgres
for attempt in $(seq 1 60); do pg_isready -q -h "$PGHOST" && break; sleep 1; done
psql -v ON_ERROR_STOP=1 -v role="$role" <<'SQL'
\set password `cat /run/secrets/pg_password`
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SQL
for db in "$@"; do
psql -v ON_ERROR_STOP=1 -v role="$role" -v db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"role";
SQL
done
echo "role $role owns: $*"
