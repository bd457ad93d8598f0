"""What doctor reads besides the Engine API: the target's host over the same ssh the
docker CLI uses (free disk, listening ports, IPVS), and the deployer's registry login.
Each read runs once; the parsers are pure (tests/unit/test_doctor.py)."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from swarm_deploy import commands
from swarm_deploy.commands import LOCAL
from swarm_deploy.doctor import HostFacts, Login, SshProbe
from swarm_deploy.engine import ArgvRunner, Json
from swarm_deploy.errors import TargetError
from swarm_deploy.facts import Engine

LISTEN = "0A"  # a TCP socket's state in /proc/net/tcp: listening


def probe_ssh(executor: ArgvRunner, target: str) -> SshProbe | None:
    """`true` over ssh, as the docker CLI would connect; None for the local engine."""
    if target == LOCAL:
        return None
    found = executor.run(commands.ssh(target, "true"), check=False, timeout=30)
    return SshProbe(found.returncode, found.stderr)


def client_version(executor: ArgvRunner) -> str | None:
    """`docker --version` here (`Docker version 28.2.2, build e6534b4`) -> `28.2.2`; None
    without a docker CLI."""
    try:
        found = executor.run(commands.docker_version(), check=False, timeout=30)
    except TargetError:
        return None
    words = found.stdout.split()
    return words[2].rstrip(",") if found.returncode == 0 and len(words) > 2 else None


def free_bytes(df: str) -> int | None:
    """`df -Pk DIR`'s answer -> the bytes available there."""
    lines = df.strip().splitlines()
    fields = lines[-1].split() if len(lines) > 1 else []
    return int(fields[3]) * 1024 if len(fields) > 3 and fields[3].isdigit() else None


def listening(proc_net_tcp: str) -> frozenset[int]:
    """/proc/net/tcp and tcp6 -> the ports of the sockets that listen."""
    ports = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == LISTEN and ":" in fields[1]:
            ports.add(int(fields[1].rpartition(":")[2], 16))
    return frozenset(ports)


def host(executor: ArgvRunner, target: str, engine: Engine) -> HostFacts:
    def read(*argv: str) -> tuple[int, str]:
        try:
            found = executor.run(commands.on_host(target, *argv), check=False, timeout=30)
        except TargetError:  # the tool is not installed here
            return 127, ""
        return found.returncode, found.stdout

    df_code, df = read("df", "-Pk", engine.docker_root)
    _, tcp = read("cat", "/proc/net/tcp", "/proc/net/tcp6")
    loaded, _ = read("cat", "/proc/net/ip_vs")
    # a module on disk, which `modprobe ip_vs` would load
    module, _ = read("grep", "-q", "/ip_vs.ko", f"/lib/modules/{engine.kernel}/modules.dep")
    return HostFacts(
        free_bytes(df) if df_code == 0 else None, listening(tcp), loaded == 0, module == 0
    )


def _jwt_expiry(token: str) -> datetime | None:
    """When a JWT says it expires (`exp`); None for any other token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


def docker_config_file(environ: Mapping[str, str]) -> Path:
    """Where the docker CLI keeps logins: $DOCKER_CONFIG/config.json, else ~/.docker."""
    folder = environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def read_login(data: Json, registry: str, config_file: str) -> Login:
    """The login docker's config.json holds for `registry` (a host), never its secret."""
    auths = data.get("auths") or {}
    entry = next(
        (v for k, v in auths.items() if k.removeprefix("https://").rstrip("/") == registry),
        None,
    )
    helper = (data.get("credHelpers") or {}).get(registry)
    if helper is None and entry is not None and not entry.get("auth"):
        helper = data.get("credsStore")
    if helper:
        return Login(registry, config_file, helper)
    if entry is None or not entry.get("auth"):
        return Login(registry, config_file)
    try:
        user, _, password = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
    except (binascii.Error, ValueError):
        user, password = "", ""
    # a token the registry issued, or a password that is itself a JWT, says when it ends
    token = entry.get("identitytoken") or entry.get("registrytoken") or password
    return Login(registry, config_file, "password", user or None, _jwt_expiry(token))


def login(registry: str, environ: Mapping[str, str] | None = None) -> Login:
    path = docker_config_file(os.environ if environ is None else environ)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    return read_login(data if isinstance(data, dict) else {}, registry, str(path))
