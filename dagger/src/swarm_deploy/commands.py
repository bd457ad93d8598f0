"""docker argv builders: pure functions that return list[str] and run nothing.

`target` is `local` (the deployer's own engine) or `ssh://user@host[:port]`, passed to
docker as `--host` so that every command shows where it goes.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from swarm_deploy.config import Image
from swarm_deploy.datakinds import DataKind

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


def docker_version() -> list[str]:
    """The CLI's own version, asking no engine: `Docker version 28.2.2, build e6534b4`."""
    return ["docker", "--version"]


def compose_config(compose_file: str) -> list[str]:
    """The docker CLI's Compose loader: the file normalised (long-form ports, each
    env_file merged into environment), `${VAR}` left as written."""
    return ["docker", "stack", "config", "--compose-file", compose_file, "--skip-interpolation"]


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


def exec_in(target: str, container: str, *argv: str) -> list[str]:
    return docker(target, "exec", container, *argv)


# The colour a branch's nginx serves is named by one empty file in its live/ directory,
# live/blue or live/green, which nginx.conf tests on every request: green when both
# exist (nginx.conf tests it last), none when neither does. `named DIR` sets $colour to
# it (no subshell: each process the switch starts costs milliseconds on a loaded host).
_NAMED = r"""named() {
	colour=
	for c in blue green; do [ ! -f "$1/$c" ] || colour=$c; done
}
"""

# What a branch's nginx serves and which colour its live/ names, in one `docker exec`
# (edge.read_nginx): the headers of a new request to the URL $2 (when given), a line
# "--- <dir>", then the colour live/ $1 names (nothing after that line for none).
READ_SCRIPT = (
    _NAMED
    + r"""[ $# -lt 2 ] || curl -s -o /dev/null -D - --max-time 5 "$2"
printf '%s %s\n' --- "$1"
named "$1"
printf %s "$colour"
"""
)


def read_live(target: str, container: str, live_dir: str, url: str | None) -> list[str]:
    """READ_SCRIPT: the answer's headers to `url` (None: no request), then the colour."""
    return exec_in(
        target, container, "sh", "-c", READ_SCRIPT, "sh", live_dir, *([url] if url else [])
    )


# Naming the live colour in a branch's nginx, in one `docker exec` (edge_actions.py runs
# it). Arguments: the live/ directory and the colour (empty: none); for a switch also the
# seconds it may take to serve it (at least: `date +%s` counts whole seconds, so a
# deadline of now + wait could come at once), the public route, the colour header, then
# the health paths. Prints the colour live/ named before (on stdout, nothing else), then
# names the new one: one rename of the other colour's file (atomic: every request sees
# one colour or the other), or a new file when none was named. nginx reads it on the next
# request: nothing to test, nothing to reload, no connection closed. A switch then checks
# that every path answers from the colour through the public route (one curl for all,
# retried every 0.02 s; each path alone only to say what failed); on any failure it
# names the colour it found again and waits until no path answers from the new one any
# more (what nginx serves decides what the deployer does next). A failure exits
# LIVE_FAILED, the reason on stderr. A verified switch removes live/colour.conf, where
# swarm-deploy named the colour before (for an nginx.conf that read it on each reload).
LIVE_SCRIPT = (
    _NAMED
    + r"""dir=$1 new=$2
named "$dir"
old=$colour
printf %s "$old"
name() {
	case $1 in
	blue) other=green ;;
	green) other=blue ;;
	*) rm -f "$dir/blue" "$dir/green"; return ;;
	esac
	if [ -f "$dir/$other" ]; then mv -f "$dir/$other" "$dir/$1"; else : >>"$dir/$1"; fi
}
load() {
	why=$( { name "$1"; } 2>&1) && return 0
	why="could not name ${1:-no colour} in $dir: $why"
	return 1
}
fail() {
	printf '%s\n' "$1" >&2
	exit 3
}
if [ $# -le 2 ]; then
	load "$new" || fail "$why"
	exit 0
fi
wait=$3 route=$4 header=$5
shift 5
deadline() {
	end=$(($(date +%s) + wait + 1))
}
past() {
	[ "$(date +%s)" -ge "$end" ]
}
colour_of() {
	curl -s -o /dev/null -D - --max-time 5 "$route$1" | tr -d '\r' |
		sed -n "s/^$header: *\([^ ]*\).*/\1/Ip" | head -n 1
}
serves() {
	n=$#
	for path; do
		set -- "$@" -o /dev/null "$route$path"
		shift
	done
	[ "$(curl -s -D - --max-time 5 "$@" | tr -d '\r' | grep -ci "^$header: *$new\$")" = "$n" ]
}
look() {
	gave= some=
	for path; do
		seen=$(colour_of "$path")
		[ "$seen" != "$new" ] || some=yes
		gave="$gave${gave:+, }$path -> ${seen:-no colour header}"
	done
}
back() {
	printf '%s\n' "$1" >&2
	shift
	if ! load "$old"; then
		printf 'naming the previous colour again: %s\n' "$why" >&2
		exit 3
	fi
	deadline
	while look "$@" && [ -n "$some" ]; do
		if past; then
			printf 'the previous colour (%s) is named again, but the public route still gave %s\n' \
				"${old:-none}" "$gave" >&2
			exit 3
		fi
		sleep 0.02
	done
	exit 3
}
load "$new" || back "$why" "$@"
end=
until serves "$@"; do
	if [ -z "$end" ]; then
		deadline
	elif past; then
		look "$@"
		back "after the switch to $new, the public route gave $gave" "$@"
	fi
	sleep 0.02
done
[ ! -e "$dir/colour.conf" ] || rm -f "$dir/colour.conf"
"""
)
LIVE_FAILED = 3


def write_live(target: str, container: str, live_dir: str, colour: str | None) -> list[str]:
    """LIVE_SCRIPT: `colour` (None: none) named in `live_dir`; nothing checked after."""
    return exec_in(target, container, "sh", "-c", LIVE_SCRIPT, "sh", live_dir, colour or "")


def switch_live(
    target: str,
    container: str,
    live_dir: str,
    colour: str,
    *,
    wait: int,
    route: str,
    header: str,
    paths: Sequence[str],
) -> list[str]:
    """LIVE_SCRIPT as a switch: `colour` named in `live_dir`, then every path answers
    from it through `route` within `wait` seconds, or the colour before is named again."""
    return exec_in(
        target, container, "sh", "-c", LIVE_SCRIPT, "sh",
        live_dir, colour, str(wait), route, header, *paths,
    )  # fmt: skip


def secret_rm(target: str, name: str) -> list[str]:
    return docker(target, "secret", "rm", name)


def config_rm(target: str, name: str) -> list[str]:
    return docker(target, "config", "rm", name)


def data_job(
    target: str,
    kind: DataKind,
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
    """A script of a data kind run as its shared service's admin, with the branch's names
    as its arguments."""
    secrets = {kind.admin_key: admin_secret}
    if branch_secret is not None:
        secrets[kind.branch_key] = branch_secret
    return run_job(
        target,
        name=name,
        image=image,
        command=kind.command(script, args),
        networks=[network],
        secrets=secrets,
        env={kind.host_env: host},
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
    constraints: Sequence[str] = (),
    mounts: Sequence[str] = (),
) -> list[str]:
    """A one-shot Swarm job: runs on whichever node can take it (or `constraints` allow),
    unlike `docker exec`. Its image is pulled with the deployer's registry credentials, as
    the stacks' images are; `configs` maps a path in the container to the Swarm config
    mounted there; `mounts` are `--mount` specs."""
    return docker(
        target, "service", "create",
        "--name", name,
        "--mode", "replicated-job",
        "--restart-condition", "none",
        "--detach",
        "--with-registry-auth",
        *(part for constraint in constraints for part in ("--constraint", constraint)),
        *(part for mount in mounts for part in ("--mount", mount)),
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


# The drain a deploy hands to the target (colour_steps.after_switch_steps): a one-shot job
# on a manager that waits $1 seconds, removes each object after $2 (an Engine API path:
# services/NAME, then secrets/NAME) through the manager's Docker socket, then its own
# service ($2) when all went. It runs in the edge's image, which has curl (the gate's
# probes need it too).
DRAIN_SCRIPT = """\
sleep "$1"
job="$2"
shift 2
failed=0
for object in "$@"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket /var/run/docker.sock \\
    -X DELETE "http://docker/$object")
  case "$code" in
    2??|404) ;;
    *) echo "removing $object: the Engine API answered $code" >&2; failed=1 ;;
  esac
done
[ "$failed" = 0 ] || exit 1
curl -s -o /dev/null --unix-socket /var/run/docker.sock -X DELETE "http://docker/services/$job"
"""
DOCKER_SOCKET = "/var/run/docker.sock"


def drain_job(
    target: str,
    *,
    name: str,
    image: str,
    seconds: float,
    services: Sequence[str],
    secrets: Sequence[str],
    labels: Mapping[str, str],
    socket: str = DOCKER_SOCKET,
) -> list[str]:
    """The one-shot job that removes `services`, then `secrets`, after `seconds`
    (DRAIN_SCRIPT), on a manager with its Docker socket (`socket` there) mounted: it
    outlives the deployer."""
    return run_job(
        target,
        name=name,
        image=image,
        command=[
            "sh", "-c", DRAIN_SCRIPT, "sh", f"{seconds:g}", name,
            *(f"services/{service}" for service in services),
            *(f"secrets/{secret}" for secret in secrets),
        ],
        networks=[],
        secrets={},
        env={},
        labels=labels,
        constraints=["node.role==manager"],
        mounts=[f"type=bind,source={socket},target={DOCKER_SOCKET}"],
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


def ssh_address(target: str) -> tuple[str, str]:
    """`ssh://user@host[:port]` -> (`user@host`, port), port 22 when it names none."""
    address = target.removeprefix("ssh://")
    destination, colon, port = address.rpartition(":")
    return (destination, port) if colon and port.isdigit() else (address, "22")


def ssh(target: str, *remote: str) -> list[str]:
    """ssh argv that runs `remote` on the target without a prompt (a key and a known host
    key, or failing); the remote shell gets each word quoted."""
    destination, port = ssh_address(target)
    return [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", port,
        "--", destination, shlex.join(remote),
    ]  # fmt: skip


def ssh_forward(target: str, local: str, remote: str) -> list[str]:
    """ssh argv that forwards the Unix socket `local` here to `remote` on the target for
    as long as its stdin stays open (the remote `cat` ends at its EOF, and the session
    with it: the forward dies with the process that started it, even a killed one). On a
    connection of its own: a ControlMaster's forwards outlive its clients. It fails
    rather than prompting, or running without the forward."""
    destination, port = ssh_address(target)
    return [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "ExitOnForwardFailure=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-L", f"{local}:{remote}", "-p", port, "--", destination, "cat",
    ]  # fmt: skip


def on_host(target: str, *argv: str) -> list[str]:
    """`argv` run on the target's host: here when it is `local`, else over ssh."""
    return list(argv) if target == LOCAL else ssh(target, *argv)
