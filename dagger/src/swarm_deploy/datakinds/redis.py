"""Redis: each branch a user whose keys and channels are its prefix only, and no command
that could touch another branch's data (FLUSHALL, KEYS, CONFIG, ... are all @dangerous).

Passwords never reach an argv: the admin's through REDISCLI_AUTH, the branch's (hex,
derived) on redis-cli's stdin. ACL SAVE keeps the users in the server's aclfile.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_deploy.datakinds.kind import DataKind, script
from swarm_deploy.naming import BranchNames

PORT = 6379


def _environment(names: BranchNames, host: str, databases: Sequence[str]) -> dict[str, str]:
    return {
        "REDIS_URL": f"redis://{host}:{PORT}/0",
        "REDIS_USER": names.role,
        "REDIS_PREFIX": names.redis_prefix,
        "REDIS_PASSWORD_FILE": "/run/secrets/redis_password",
    }


def _user_and_prefix(names: BranchNames, databases: Sequence[str]) -> list[str]:
    return [names.role, names.redis_prefix]


KIND = DataKind(
    name="redis",
    port=PORT,
    environment=_environment,
    host_env="REDIS_HOST",
    admin_key="redis_admin",
    branch_key="redis_password",
    job="redis",
    ensure=script("redis-ensure.sh"),
    drop=script("redis-drop.sh"),
    ensure_title="ensure Redis user {role} for keys {prefix}*",
    drop_title="drop the Redis keys {prefix}* and user {role}",
    note="the user can touch no other branch's keys and run no @dangerous command "
    "(FLUSHALL, KEYS, CONFIG, ...)",
    has_databases=False,
    job_args=_user_and_prefix,
)
