set -eu
role=$1; shift
export PGPASSWORD="$(cat /run/secrets/postgres_admin)" PGUSER=postgres PGDATABASE=postgres
for db in "$@"; do
psql -v ON_ERROR_STOP=1 -v db="$db" <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \gexec
SQL
done
psql -v ON_ERROR_STOP=1 -v role="$role" <<'SQL'
SELECT format('DROP ROLE IF EXISTS %I', :'role') \gexec
SQL
echo "dropped $* and role $role"
