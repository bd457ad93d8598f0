"""PostgreSQL: each branch a role owning its databases, which no other role may connect to."""

from __future__ import annotations

from collections.abc import Sequence

from swarm_deploy.datakinds.kind import DataKind, script
from swarm_deploy.naming import BranchNames

PORT = 5432


def _environment(names: BranchNames, host: str, databases: Sequence[str]) -> dict[str, str]:
    return {
        "PGHOST": host,
        "PGPORT": str(PORT),
        "PGUSER": names.role,
        "PGDATABASE": names.database(databases[0]),
        "PGPASSWORD_FILE": "/run/secrets/pg_password",
    }


KIND = DataKind(
    name="postgres",
    port=PORT,
    environment=_environment,
    host_env="PGHOST",
    admin_key="postgres_admin",
    branch_key="pg_password",
    job="db",
    # psql reads the role's password from its secret file itself (\set ... `cat`)
    ensure=script("postgres-ensure.sh"),
    drop=script("postgres-drop.sh"),
    ensure_title="ensure PostgreSQL role {role} and its databases",
    drop_title="drop the databases and role of {slug}",
    note="other branches' roles cannot connect to these databases",
)
