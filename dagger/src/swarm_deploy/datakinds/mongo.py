"""MongoDB: each branch a user of its first database (the default authSource of a
mongodb:// URL naming that database) with readWrite on its databases only.

mongosh reads both passwords from their files itself: no password reaches an argv. The
image's entrypoint reads the admin password file the same way (trailing newlines dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_deploy.datakinds.kind import DataKind, script
from swarm_deploy.naming import BranchNames

PORT = 27017


def _environment(names: BranchNames, host: str, databases: Sequence[str]) -> dict[str, str]:
    return {
        "MONGO_HOST": host,
        "MONGO_USER": names.role,
        "MONGO_DATABASE": names.database(databases[0]),
        "MONGO_PASSWORD_FILE": "/run/secrets/mongo_password",
    }


KIND = DataKind(
    name="mongo",
    port=PORT,
    environment=_environment,
    host_env="MONGO_HOST",
    admin_key="mongo_admin",
    branch_key="mongo_password",
    job="mongo",
    # JavaScript for mongosh, run by mongo-run.sh once the server answers
    ensure=script("mongo-auth.js") + script("mongo-ensure.js"),
    drop=script("mongo-auth.js") + script("mongo-drop.js"),
    ensure_title="ensure MongoDB user {role} with readWrite on {databases}",
    drop_title="drop the MongoDB databases {databases} and user {role}",
    note="the user can read and write these databases only",
    shell=script("mongo-run.sh"),
)
