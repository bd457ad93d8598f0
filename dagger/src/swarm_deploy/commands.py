"""docker argv builders: pure functions that return list[str] and run nothing.

`target` is `local` (the deployer's own engine) or `ssh://user@host[:port]`, passed to
docker as `--host` so that every command shows where it goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from swarm_deploy.config import Image

LOCAL = "local"


def docker(target: str, *args: str) -> list[str]:
    return ["docker", *([] if target == LOCAL else ["--host", target]), *args]


def _labels(flag: str, labels: Mapping[str, str]) -> list[str]:
    return [part for key, value in labels.items() for part in (flag, f"{key}={value}")]


def build(
    image: Image, context: str, dockerfile: str, ref: str, labels: Mapping[str, str]
) -> list[str]:
    """Build on the deployer's engine, always for the image's platform (amd64 from arm64 too)."""
    build_args = [part for k, v in image.build_args.items() for part in ("--build-arg", f"{k}={v}")]
    return [
        "docker", "build",
        "--platform", image.platform,
        "--file", dockerfile,
        "--tag", ref,
        *_labels("--label", labels),
        *build_args,
        context,
    ]  # fmt: skip


def buildx_version() -> list[str]:
    return ["docker", "buildx", "version"]


def push(ref: str) -> list[str]:
    return ["docker", "push", ref]


def repo_digests(ref: str) -> list[str]:
    """Prints the image's `repo@sha256:...` references once it has been pushed."""
    return ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref]


def secret_create(target: str, name: str, labels: Mapping[str, str]) -> list[str]:
    """Create a Swarm secret whose value the executor writes to stdin (`-`), never argv."""
    return docker(target, "secret", "create", *_labels("--label", labels), name, "-")


def stack_deploy(
    target: str,
    compose_file: str,
    stack: str,
    registry_auth: bool = True,
    resolve_image: str = "always",
) -> list[str]:
    """Returns before anything converges: the deployer waits by reading tasks."""
    return docker(
        target, "stack", "deploy",
        "--compose-file", compose_file,
        *(["--with-registry-auth"] if registry_auth else []),
        "--resolve-image", resolve_image,
        "--prune",
        "--detach=true",
        stack,
    )  # fmt: skip


def stack_rm(target: str, stack: str) -> list[str]:
    return docker(target, "stack", "rm", stack)


def service_scale(target: str, service: str, replicas: int) -> list[str]:
    return docker(target, "service", "scale", "--detach", f"{service}={replicas}")


def service_label(
    target: str, service: str, labels: Mapping[str, str], remove: Sequence[str] = ()
) -> list[str]:
    """Service labels are outside the task template: changing them restarts no task."""
    return docker(
        target, "service", "update", "--detach", "--no-resolve-image",
        *_labels("--label-add", labels),
        *(part for key in remove for part in ("--label-rm", key)),
        service,
    )  # fmt: skip


def save(ref: str) -> list[str]:
    return ["docker", "image", "save", ref]


def load(target: str) -> list[str]:
    return docker(target, "image", "load", "--quiet")


def exec_in(target: str, container: str, *argv: str, stdin: bool = False) -> list[str]:
    return docker(target, "exec", *(["--interactive"] if stdin else []), container, *argv)


def secret_rm(target: str, name: str) -> list[str]:
    return docker(target, "secret", "rm", name)


def config_rm(target: str, name: str) -> list[str]:
    return docker(target, "config", "rm", name)


# Runs in the shared PostgreSQL image. psql reads the role's password from its secret
# file itself (\set ... `cat`), so the password is never in an argv.
ENSURE_DATABASES = r"""set -eu
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
"""


DROP_DATABASES = r"""set -eu
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
"""


# Redis: each branch a user whose keys and channels are its prefix only; no command that
# could touch another branch's data (FLUSHALL, KEYS, CONFIG, ... are all @dangerous).
# Passwords never reach an argv: the admin's through REDISCLI_AUTH, the branch's (hex,
# derived) on redis-cli's stdin. ACL SAVE keeps the users in the server's aclfile.
ENSURE_REDIS_USER = r"""set -eu
user=$1 prefix=$2
REDISCLI_AUTH="$(cat /run/secrets/redis_admin)"; export REDISCLI_AUTH
for attempt in $(seq 1 60); do
    [ "$(redis-cli -h "$REDIS_HOST" PING 2>/dev/null)" = PONG ] && break; sleep 1
done
replies=$({
    printf 'ACL SETUSER %s reset on >%s ~%s* &%s* +@all -@dangerous\n' \
        "$user" "$(cat /run/secrets/redis_password)" "$prefix" "$prefix"
    echo 'ACL SAVE'
} | redis-cli -h "$REDIS_HOST" 2>&1)
[ "$replies" = "$(printf 'OK\nOK')" ] || { echo "redis refused: $replies" >&2; exit 1; }
echo "redis user $user: keys and channels $prefix*"
"""

DROP_REDIS_USER = r"""set -eu
user=$1 prefix=$2
REDISCLI_AUTH="$(cat /run/secrets/redis_admin)"; export REDISCLI_AUTH
redis-cli -h "$REDIS_HOST" --scan --pattern "$prefix*" \
    | xargs -r -d '\n' -n 100 redis-cli -h "$REDIS_HOST" UNLINK >/dev/null
redis-cli -h "$REDIS_HOST" ACL DELUSER "$user" >/dev/null
[ "$(redis-cli -h "$REDIS_HOST" ACL SAVE)" = OK ]
echo "dropped the keys $prefix* and user $user"
"""


# MongoDB: each branch a user of its first database (the default authSource of a
# mongodb:// URL naming that database) with readWrite on its databases only. mongosh
# reads both passwords from their files itself: no password reaches an argv. The image's
# entrypoint reads the admin password file the same way (trailing newlines dropped).
_MONGO_SH = r"""set -eu
export ROLE="$1"; shift; export DATABASES="$*"
for attempt in $(seq 1 60); do
    mongosh --quiet --host "$MONGO_HOST" --eval 'db.runCommand({ping: 1}).ok' >/dev/null 2>&1 \
        && break
    sleep 1
done
exec mongosh --quiet --host "$MONGO_HOST" --eval "$0"
"""
_MONGO_JS_AUTH = """const fs = require("fs");
const secret = (key) => fs.readFileSync(`/run/secrets/${key}`, "utf8").replace(/\\n+$/, "");
const admin = db.getSiblingDB("admin");
if (!admin.auth("admin", secret("mongo_admin")).ok) { throw new Error("admin login refused"); }
const role = process.env.ROLE;
const names = process.env.DATABASES.split(" ");
const home = db.getSiblingDB(names[0]);
"""
ENSURE_MONGO_USER = (
    _MONGO_JS_AUTH
    + """const roles = names.map((name) => ({role: "readWrite", db: name}));
const password = secret("mongo_password");
if (home.getUser(role)) { home.updateUser(role, {pwd: password, roles: roles}); }
else { home.createUser({user: role, pwd: password, roles: roles}); }
print(`mongo user ${role}: readWrite on ${names.join(", ")}`);
"""
)
DROP_MONGO_USER = (
    _MONGO_JS_AUTH
    + """if (home.getUser(role)) { home.dropUser(role); }
names.forEach((name) => db.getSiblingDB(name).dropDatabase());
print(`dropped ${names.join(", ")} and user ${role}`);
"""
)


@dataclass(frozen=True)
class DataAccess:
    """How a job reaches a shared data service: the variable naming its host, where the
    admin's and the branch's passwords are mounted (/run/secrets/<key>), the scripts that
    make (deploy) and remove (destroy --drop-data) the branch's part of it, and how the
    plan names those steps ({role}, {databases}, {prefix}, {slug} filled in)."""

    host_env: str
    admin_key: str
    branch_key: str
    ensure: str
    drop: str
    ensure_title: str
    drop_title: str
    note: str
    # the job runs `sh -c SHELL SCRIPT ...`; None: the script itself is the shell script
    shell: str | None = None

    def command(self, script: str, kind: str, args: Sequence[str]) -> list[str]:
        if self.shell is None:
            return ["sh", "-c", script, f"{kind}-job", *args]
        return ["sh", "-c", self.shell, script, *args]


DATA_ACCESS = {
    "postgres": DataAccess(
        "PGHOST", "postgres_admin", "pg_password", ENSURE_DATABASES, DROP_DATABASES,
        ensure_title="ensure PostgreSQL role {role} and its databases",
        drop_title="drop the databases and role of {slug}",
        note="other branches' roles cannot connect to these databases",
    ),
    "mongo": DataAccess(
        "MONGO_HOST", "mongo_admin", "mongo_password", ENSURE_MONGO_USER, DROP_MONGO_USER,
        ensure_title="ensure MongoDB user {role} with readWrite on {databases}",
        drop_title="drop the MongoDB databases {databases} and user {role}",
        note="the user can read and write these databases only",
        shell=_MONGO_SH,
    ),
    "redis": DataAccess(
        "REDIS_HOST", "redis_admin", "redis_password", ENSURE_REDIS_USER, DROP_REDIS_USER,
        ensure_title="ensure Redis user {role} for keys {prefix}*",
        drop_title="drop the Redis keys {prefix}* and user {role}",
        note="the user can touch no other branch's keys and run no @dangerous command "
        "(FLUSHALL, KEYS, CONFIG, ...)",
    ),
}  # fmt: skip


def data_job(
    target: str,
    kind: str,
    *,
    script: str,
    name: str,
    image: str,
    network: str,
    host: str,
    admin_secret: str,
    args: Sequence[str],
    labels: Mapping[str, str],
    branch_secret: str | None = None,
) -> list[str]:
    """A script of DATA_ACCESS run as a shared data service's admin, with the branch's
    names as its arguments."""
    access = DATA_ACCESS[kind]
    secrets = {access.admin_key: admin_secret}
    if branch_secret is not None:
        secrets[access.branch_key] = branch_secret
    return run_job(
        target,
        name=name,
        image=image,
        command=access.command(script, kind, args),
        networks=[network],
        secrets=secrets,
        env={access.host_env: host},
        labels=labels,
    )


def run_job(
    target: str,
    *,
    name: str,
    image: str,
    command: list[str],
    networks: list[str],
    secrets: Mapping[str, str],
    env: Mapping[str, str],
    labels: Mapping[str, str],
    configs: Mapping[str, str] | None = None,
) -> list[str]:
    """A one-shot Swarm job: runs on whichever node can take it, unlike `docker exec`.
    Its image is pulled with the deployer's registry credentials, as the stacks' images are;
    `configs` maps a path in the container to the Swarm config mounted there."""
    return docker(
        target, "service", "create",
        "--name", name,
        "--mode", "replicated-job",
        "--restart-condition", "none",
        "--detach",
        "--with-registry-auth",
        *_labels("--label", labels),
        *(part for network in networks for part in ("--network", network)),
        *(part for key, swarm_name in secrets.items()
          for part in ("--secret", f"source={swarm_name},target={key}")),
        *(part for path, swarm_name in (configs or {}).items()
          for part in ("--config", f"source={swarm_name},target={path}")),
        *_labels("--env", env),
        image,
        *command,
    )  # fmt: skip


def config_create(target: str, name: str, file: str, labels: Mapping[str, str]) -> list[str]:
    """A Swarm config from a file on the deployer (the docker CLI reads it)."""
    return docker(target, "config", "create", *_labels("--label", labels), name, file)


# What the edge's nginx reads, in its image and in the one-shot job that tests it.
NGINX_CONF_PATH = "/etc/nginx/nginx.conf"


def nginx_test(conf: str | None = None) -> list[str]:
    """`nginx -t`: the config nginx would start with (its own, or `conf`), parsed and checked."""
    return ["nginx", "-t", *(["-c", conf] if conf else [])]


def nginx_version() -> list[str]:
    """Prints `nginx version: nginx/1.22.1` (on stderr)."""
    return ["nginx", "-v"]


def login(registry: str, user: str) -> list[str]:
    """`docker login`, the token on stdin."""
    return ["docker", "login", "--password-stdin", "--username", user, registry]


def registry_host(registry: str) -> str:
    """`ghcr.io/acme` -> `ghcr.io`: where `docker login` goes."""
    return registry.split("/", 1)[0]


def pin(published: str) -> str:
    """`repo:tag@sha256:...` (what a push reports) -> `repo@sha256:...`: deploy by digest."""
    name, _, digest = published.partition("@")
    repository, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        name = repository
    return f"{name}@{digest}"
