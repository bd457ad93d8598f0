"""`swarm-deploy init`: a swarm-deploy.yml from an existing Compose app.

The docker CLI's own Compose loader (`docker stack config`) reads the Compose file: one
fact, `read_compose`. Everything after it is pure: `parse` turns its output into
`ComposeService` values, `adopt` decides the config and the report, `dump` writes the
YAML text. A value that looks like a credential is classified here and dropped here:
only its variable's name ever leaves this module.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from swarm_deploy import commands
from swarm_deploy._reader import parse_yaml
from swarm_deploy.config_values import APP
from swarm_deploy.datakinds import KINDS
from swarm_deploy.engine import ArgvRunner
from swarm_deploy.errors import CommandError, ConfigError
from swarm_deploy.naming import BranchNames, SharedNames
from swarm_deploy.secrets import parse_env

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
CREDENTIAL_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "PASS", "PWD", "SECRET", "TOKEN", "KEY", "APIKEY", "CREDENTIALS",
     "CREDENTIAL", "PRIVATE", "AUTH", "SALT"}
)  # fmt: skip
# what each data kind's official image reads its admin password from, on first start
ADMIN_PASSWORD_VARS = {
    "postgres": ("POSTGRES_PASSWORD",),
    "mongo": ("MONGO_INITDB_ROOT_PASSWORD",),
    "redis": ("REDIS_PASSWORD",),
}
UNSUPPORTED_DATA = ("mysql", "mariadb")
HOST_WORDS = frozenset({"HOST", "HOSTNAME", "ADDR", "ADDRESS", "SERVER", "URL", "URI", "DSN"})
PROXY_IMAGES = ("nginx", "caddy", "traefik", "haproxy", "httpd")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]")  # noqa: S104 - matched, not bound
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_HTTP_URL = re.compile(r"https?://(?P<host>[^/:\s'\"]+)(?::(?P<port>\d+))?(?P<path>/[^\s'\"]*)?")
# the keys of a Compose service that init maps (the others are reported, by name)
_MAPPED = frozenset(
    {"image", "build", "ports", "expose", "environment", "env_file", "healthcheck", "command",
     "depends_on", "deploy", "restart", "container_name", "networks"}
)  # fmt: skip


# ---- the fact -------------------------------------------------------------------------


def read_compose(runner: ArgvRunner, compose_file: Path) -> str:
    """The Compose file as the docker CLI's loader reads it, `${VAR}` left as written.
    Its text holds each env_file's values: callers hand it to `parse` and nothing else."""
    try:
        return runner.run(commands.compose_config(compose_file.name), timeout=60).stdout
    except CommandError as exc:
        raise ConfigError(
            str(compose_file),
            f"the docker CLI's Compose loader (`docker stack config`) refused it: "
            f"{exc.stderr.strip()}; make it a file `docker stack config -c {compose_file.name}` "
            "accepts (it knows the Compose file format 3.x: no top-level `name:`, no "
            "`profiles:`, `depends_on` as a list) and run init again",
        ) from None


# ---- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    context: str
    dockerfile: str | None = None
    args: Mapping[str, str | None] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str | None = None
    build: Build | None = None
    ports: tuple[tuple[int, int | None], ...] = ()  # (target, published)
    expose: tuple[int, ...] = ()
    environment: Mapping[str, str | None] = field(default_factory=dict)
    env_files: tuple[str, ...] = ()
    healthcheck: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    depends_on: tuple[str, ...] = ()
    replicas: int | None = None
    other_keys: tuple[str, ...] = ()


def _strings(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(shlex.split(raw))
    return tuple(str(part) for part in raw)


def _build(raw: Any) -> Build | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return Build(context=raw)
    args = raw.get("args") or {}
    if isinstance(args, list):
        args = dict(part.split("=", 1) if "=" in part else (part, None) for part in args)
    return Build(
        context=str(raw.get("context", ".")),
        dockerfile=raw.get("dockerfile"),
        args={str(k): None if v is None else str(v) for k, v in args.items()},
        target=raw.get("target"),
    )


def parse(text: str, source: str) -> list[ComposeService]:
    """`docker stack config`'s output, in its (name) order."""
    loaded = parse_yaml(text, source) or {}
    services = []
    for name, given in (loaded.get("services") or {}).items():
        raw = given or {}
        env = raw.get("environment") or {}
        services.append(
            ComposeService(
                name=str(name),
                image=raw.get("image"),
                build=_build(raw.get("build")),
                ports=tuple((int(p["target"]), p.get("published")) for p in raw.get("ports") or ()),
                expose=tuple(
                    int(str(p).split("/")[0].split("-")[0]) for p in raw.get("expose") or ()
                ),
                environment={str(k): None if v is None else str(v) for k, v in env.items()},
                env_files=_strings(raw.get("env_file")),
                healthcheck=_strings((raw.get("healthcheck") or {}).get("test")),
                command=_strings(raw["command"]) if raw.get("command") is not None else None,
                depends_on=_strings(raw.get("depends_on")),
                replicas=(raw.get("deploy") or {}).get("replicas"),
                other_keys=tuple(
                    sorted(
                        (set(raw) - _MAPPED)
                        | {f"deploy.{k}" for k in raw.get("deploy") or {} if k != "replicas"}
                    )
                ),
            )
        )
    return services


def env_file_names(services: Sequence[ComposeService], base: Path) -> dict[str, frozenset[str]]:
    """The variable names each service's env_file files define (their values are not kept):
    so that a value the loader merged from a file is never written."""
    names: dict[str, frozenset[str]] = {}
    for service in services:
        found: set[str] = set()
        for file in service.env_files:
            path = Path(file) if Path(file).is_absolute() else base / file
            try:
                found |= parse_env(path.read_text(), f"env_file {file}").keys()
            except OSError as exc:
                raise ConfigError(
                    f"services/{service.name}/env_file",
                    f"cannot read {path} ({exc.strerror}); create it or remove it from the "
                    "Compose file",
                ) from None
        names[service.name] = frozenset(found)
    return names


# ---- the decision ---------------------------------------------------------------------


@dataclass(frozen=True)
class InitOptions:
    """What the user chose; None: init's default (said in the report)."""

    directory: str  # the Compose file's directory: the default app name
    app: str | None = None
    domain: str | None = None
    registry: str | None = None
    # where the build contexts are, relative to the written config's directory
    context_base: str = "."
    # variable names of the --env-file (the values are read only to classify)
    env_file: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Adopted:
    config: dict[str, Any]
    report: list[str]


def _image_name(image: str) -> str:
    """`docker.io/library/postgres:16` -> `postgres`."""
    return image.split("@", maxsplit=1)[0].rsplit("/", 1)[-1].split(":", maxsplit=1)[0].lower()


def data_kind(image: str | None) -> str | None:
    """The data kind an image runs, `mysql`/`mariadb` for those not supported, or None."""
    if image is None:
        return None
    name = _image_name(image)
    for kind in (*KINDS, *UNSUPPORTED_DATA):
        if name.startswith(kind):
            return kind
    return None


def config_name(text: str) -> str:
    """A config name (lower case, single `_` between words, at most 30) from any name."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    name = "_".join(words)[:30].strip("_")
    return name if name[:1].isalpha() else f"s_{name}"[:30].strip("_")


def app_name(text: str) -> str:
    """An `app` (lower-case letters and digits, starting with a letter, at most 20)."""
    name = re.sub(r"[^a-z0-9]", "", text.lower()).lstrip("0123456789")[:20]
    return name if re.fullmatch(APP, name) else "app"


def _words(name: str) -> set[str]:
    return set(re.split(r"[^A-Z0-9]+", name.upper()))


def is_credential_name(name: str) -> bool:
    return bool(_words(name) & CREDENTIAL_WORDS)


def has_userinfo(value: str) -> bool:
    """A URL with a password in it (`scheme://user:password@host`)."""
    try:
        return urlsplit(value).password is not None
    except ValueError:
        return False


def _references(value: str) -> list[str]:
    return _REFERENCE.findall(value)


def _host_of(value: str) -> str | None:
    """The host a connection setting names: a URL's, `host:port`'s, or a bare host's."""
    if "://" in value:
        try:
            return urlsplit(value).hostname
        except ValueError:
            return None
    host = value.split(":", maxsplit=1)[0]
    return host if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", host) else None


def _names_a_host(var: str, value: str) -> bool:
    """A URL, or a host setting (`DB_HOST: db`, `REDIS_ADDR: cache:6379`), not a word
    that happens to be a service's name (`CACHE_BACKEND: redis`)."""
    return "://" in value or bool(_words(var) & HOST_WORDS)


def http_check(test: Sequence[str]) -> tuple[str, int | None] | None:
    """(path, port) of a healthcheck that is curl or wget of a local HTTP URL."""
    words = [w for part in test for w in (shlex.split(part) if " " in part else [part])]
    if not any(Path(w).name in ("curl", "wget") for w in words):
        return None
    for word in words:
        found = _HTTP_URL.fullmatch(word)
        if found and found["host"] in LOCAL_HOSTS:
            return found["path"] or "/", int(found["port"]) if found["port"] else None
    return None


@dataclass
class _Adoption:
    """What adopt builds up, one service after another."""

    options: InitOptions
    env_files: Mapping[str, frozenset[str]]
    report: list[str] = field(default_factory=list)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    image_of_build: dict[tuple[object, ...], str] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    # compose host name -> data kind; admin password variables -> data service
    data_hosts: dict[str, str] = field(default_factory=dict)
    admin_vars: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> str:
        assert self.options.app is not None  # resolved by _defaults
        return self.options.app

    def say(self, line: str) -> None:
        self.report.append(line)


def _admin_secret(state: _Adoption, service: ComposeService, kind: str) -> str:
    secret = KINDS[kind].admin_key
    env = f"{state.app.upper()}_{kind.upper()}_ADMIN_PASSWORD"
    for var in ADMIN_PASSWORD_VARS[kind]:
        value = service.environment.get(var)
        refs = _references(value) if value else []
        if refs:
            env = refs[0]
        if value is not None:
            state.admin_vars[var] = service.name
            for ref in refs:
                state.admin_vars[ref] = service.name
    state.secrets[secret] = {"env": env}
    return secret


def _data_service(state: _Adoption, service: ComposeService, kind: str) -> None:
    assert service.image is not None
    if kind in UNSUPPORTED_DATA:
        state.say(
            f"{service.name}: {service.image} is {kind}: not supported yet (shared data "
            "services are PostgreSQL, Redis and MongoDB); not carried, and its users keep "
            "their settings for it"
        )
        return
    if kind in state.shared:
        first = next(host for host, k in state.data_hosts.items() if k == kind)
        state.say(
            f"{service.name}: a second {kind} ({service.image}): not carried; one shared "
            f"{kind} serves every branch, and {first} is it"
        )
        return
    entry: dict[str, Any] = {"image": service.image}
    if kind in ("postgres", "mongo"):
        database = config_name(
            service.environment.get(
                "POSTGRES_DB" if kind == "postgres" else "MONGO_INITDB_DATABASE"
            )
            or "main"
        )
        if "$" in database or not database:
            database = "main"
        entry["databases"] = [database]
    entry["admin_password"] = _admin_secret(state, service, kind)
    state.shared[kind] = entry
    state.data_hosts[service.name] = kind
    source = state.secrets[entry["admin_password"]]["env"]
    state.say(
        f"{service.name}: {service.image} -> shared/{kind}: one {kind} for every branch, each "
        f"branch its own {'database' if kind != 'redis' else 'user and key prefix'}; admin "
        f"password: secret {entry['admin_password']} from ${source}"
    )
    if "volumes" in service.other_keys:
        state.say(
            f"{service.name}: its volumes are not carried: the shared {kind} keeps its "
            f"data on the volume {SharedNames(state.app).stack}_{kind}; move "
            "existing data there yourself (dump and restore)"
        )
    dropped = sorted(k for k in service.environment if k not in ADMIN_PASSWORD_VARS[kind])
    if dropped:
        state.say(
            f"{service.name}: environment not carried ({', '.join(dropped)}): the shared "
            f"{kind} is configured by swarm-deploy"
        )


def _image(state: _Adoption, service: ComposeService) -> str | None:
    """The name under `images` that builds this service, added on first sight."""
    build = service.build
    assert build is not None
    if "://" in build.context or build.context.startswith("git@"):
        state.say(
            f"{service.name}: build context {build.context} is remote: not supported "
            "(a build context is a directory of the repository); not carried"
        )
        return None
    same = (build.context, build.dockerfile, tuple(sorted(build.args.items())), build.target)
    if same in state.image_of_build:
        return state.image_of_build[same]
    name = config_name(service.name)
    context = os.path.normpath(os.path.join(state.options.context_base, build.context))
    entry: dict[str, Any] = {"context": context}
    if build.dockerfile:
        entry["dockerfile"] = build.dockerfile
    args = {}
    for key, value in build.args.items():
        if value is None or "$" in value:
            state.say(
                f"{service.name}: build arg {key} has no value of its own in the Compose "
                "file (it comes from the environment): not carried; set "
                f"images/{name}/build_args/{key} if the build needs it"
            )
        elif is_credential_name(key) or has_userinfo(value):
            state.say(
                f"{service.name}: build arg {key} looks like a credential: not carried "
                "(a build arg stays in the image's history); give the build a secret "
                "another way"
            )
        else:
            args[key] = value
    if args:
        entry["build_args"] = args
    if build.target:
        state.say(
            f"{service.name}: build target {build.target}: not carried (images have no "
            "target stage key); the image builds the Dockerfile's last stage"
        )
    state.images[name] = entry
    state.image_of_build[same] = name
    return name


def _secret(state: _Adoption, service: str, var: str, source: str) -> str:
    base = name = config_name(var)
    # the names swarm-deploy gives the data services' secrets are not the app's to take
    taken = {k.admin_key for k in KINDS.values()} | {k.branch_key for k in KINDS.values()}
    number = 1
    while name in taken or state.secrets.get(name, {"env": source}) != {"env": source}:
        number += 1
        name = f"{base[:27]}_{number}"
    state.secrets[name] = {"env": source}
    state.say(
        f"{service}: {var} looks like a credential -> secret {name} (from ${source} at deploy "
        f"time), mounted at /run/secrets/{name}; the service gets {var}_FILE with that path "
        f"instead of {var}: read the value from the file"
    )
    return name


def _provided(kind: str) -> tuple[str, ...]:
    """The variables `uses: [kind]` sets, as one sample branch's wiring names them."""
    names = BranchNames.derive("app", "main")
    return tuple(KINDS[kind].environment(names, "relay", ["main"]))


def _connection(state: _Adoption, service: str, var: str, value: str, kind: str) -> None:
    provided = ", ".join(_provided(kind))
    if var in _provided(kind):
        others = ", ".join(v for v in _provided(kind) if v != var)
        state.say(
            f"{service}: {var} pointed at the Compose {kind} -> `uses: [{kind}]` sets {var} to "
            f"the branch's relay, with no credentials in it: the app logs in with the others "
            f"it gets ({others})"
        )
        return
    password = (
        " (its password is replaced by the branch's own, in the file)"
        if (has_userinfo(value) or _references(value))
        else ""
    )
    state.say(
        f"{service}: {var} pointed at the Compose {kind} -> not carried; `uses: [{kind}]` "
        f"gives the service {provided}, the branch's relay and its own "
        f"{'database' if kind != 'redis' else 'user'}{password}: build {var} from them"
    )


def _environment(state: _Adoption, service: ComposeService, entry: dict[str, Any]) -> None:
    env: dict[str, str] = {}
    secrets: list[str] = []
    uses: list[str] = []
    from_files = state.env_files.get(service.name, frozenset())
    for var, value in sorted(service.environment.items()):
        refs = _references(value) if value is not None else []
        host = _host_of(value) if value is not None and _names_a_host(var, value) else None
        kind = state.data_hosts.get(host or "")
        if kind is not None:
            if kind not in uses:
                uses.append(kind)
            _connection(state, service.name, var, value or "", kind)
            continue
        owner = state.admin_vars.get(var) or next(
            (state.admin_vars[ref] for ref in refs if ref in state.admin_vars), None
        )
        if owner is not None:
            owned = state.data_hosts[owner]
            password = next(v for v in _provided(owned) if v.endswith("PASSWORD_FILE"))
            state.say(
                f"{service.name}: {var} is the password of {owner}: not carried; with "
                f"`uses: [{owned}]` the service has the branch's own password in {password}"
            )
            if owned not in uses:
                uses.append(owned)
            continue
        referenced = [state.options.env_file.get(ref, "") for ref in refs]
        if (
            is_credential_name(var)
            or any(is_credential_name(ref) for ref in refs)
            or (value is not None and has_userinfo(value))
            or any(has_userinfo(v) for v in referenced)
        ):
            source = refs[0] if len(refs) == 1 and value == f"${{{refs[0]}}}" else var
            name = _secret(state, service.name, var, source)
            secrets.append(name)
            env[f"{var}_FILE"] = f"/run/secrets/{name}"
        elif var in from_files:
            state.say(
                f"{service.name}: {var} comes from an env_file: its value is not written "
                f"(values of .env files stay out of the config); if it is not secret, "
                f"set services/{entry['name']}/env/{var}"
            )
        elif value is None or refs:
            # only the names it refers to: the rest of a value may hold a credential
            source = ", ".join(f"${ref}" for ref in refs) or "no value in the Compose file"
            state.say(
                f"{service.name}: {var} takes its value from the environment ({source}): "
                f"not carried; set services/{entry['name']}/env/{var}"
            )
        else:
            env[var] = value
    if uses:
        entry["uses"] = [kind for kind in KINDS if kind in uses]
    if secrets:
        entry["secrets"] = secrets
    if env:
        entry["env"] = env


def _is_proxy(service: ComposeService) -> bool:
    return (
        service.build is None
        and service.image is not None
        and any(_image_name(service.image).startswith(name) for name in PROXY_IMAGES)
    )


def _port(state: _Adoption, service: ComposeService, health_port: int | None) -> int | None:
    targets = [target for target, _ in service.ports]
    candidates = [*targets, *service.expose]
    port = (
        health_port if health_port in candidates else (candidates[0] if candidates else health_port)
    )
    rest = sorted({p for p in targets if p != port})
    if rest:
        state.say(
            f"{service.name}: published port{'s' if len(rest) > 1 else ''} "
            f"{', '.join(map(str, rest))} not carried: a service gets one port, routed "
            f"through the branch's nginx ({port}); reach the others on the branch's "
            "network, or split them into services"
        )
    return port


def adopt(
    services: Sequence[ComposeService],
    env_files: Mapping[str, frozenset[str]],
    options: InitOptions,
) -> Adopted:
    """The config for a Compose app and the report of what was mapped how, and what not."""
    state = _Adoption(_defaults(options), env_files)
    _say_defaults(state, options)
    for service in services:
        kind = data_kind(service.image) if service.build is None else None
        if kind is not None:
            _data_service(state, service, kind)
    proxied: set[str] = set()
    built = {s.name for s in services if s.build is not None}
    for service in services:
        if _is_proxy(service):
            # what it proxies: its depends_on, else every built service that exposes a port
            upstream = {d for d in service.depends_on if d in built} or {
                s.name for s in services if s.name in built and s.expose
            }
            proxied |= upstream
            state.say(
                f"{service.name}: {service.image} is the app's own reverse proxy: not "
                "carried; each branch's nginx routes to the services behind it "
                f"({', '.join(sorted(upstream)) or 'none found'})"
            )
    routed: list[tuple[ComposeService, dict[str, Any], tuple[str, int | None] | None]] = []
    for service in services:
        if service.name in state.data_hosts or data_kind(service.image) or _is_proxy(service):
            continue
        if service.build is None:
            state.say(
                f"{service.name}: runs the public image {service.image} with no build: "
                "not carried (swarm-deploy builds every colour service's image); add "
                "its build, or run it outside swarm-deploy"
            )
            continue
        image = _image(state, service)
        if image is None:
            continue
        name = config_name(service.name)
        entry: dict[str, Any] = {"name": name, "image": image}
        check = http_check(service.healthcheck) if service.healthcheck else None
        if service.healthcheck and check is None and service.healthcheck != ("NONE",):
            state.say(
                f"{service.name}: its healthcheck is not an HTTP check by curl or wget of "
                "localhost: not carried (the gate checks the service's health path instead)"
            )
        if service.ports or service.name in proxied:
            port = _port(state, service, check[1] if check else None)
            if port is None:
                state.say(
                    f"{service.name}: behind the proxy, but no port found (no expose, "
                    "ports or HTTP healthcheck): not routed; set its port, path and "
                    "health"
                )
            else:
                entry["port"] = port
                routed.append((service, entry, check))
        if service.command is not None:
            entry["command"] = list(service.command)
        if service.replicas not in (None, 1):
            entry["replicas"] = service.replicas
        _environment(state, service, entry)
        ignored = [k for k in service.other_keys if k not in ("build",)]
        if ignored:
            state.say(
                f"{service.name}: {', '.join(ignored)}: not carried (a colour service "
                "keeps no state of its own and gets its network from swarm-deploy)"
            )
        if entry.get("port") is None:
            state.say(
                f"{service.name}: no published port: not routed; it runs in both "
                "colours while a deploy switches (set singleton: true if two copies "
                "must never run at once)"
            )
        state.services[name] = entry
    _route(state, routed)
    order = ("image", "port", "path", "health", "replicas", "command", "uses", "secrets", "env")
    state.services = {
        name: {key: entry[key] for key in order if key in entry}
        for name, entry in state.services.items()
    }
    return Adopted(_config(state), state.report)


def _defaults(options: InitOptions) -> InitOptions:
    app = app_name(options.app or options.directory)
    return replace(
        options,
        app=app,
        domain=options.domain or f"{app}.example.com",
        registry=options.registry or f"ghcr.io/{app}",
    )


def _say_defaults(state: _Adoption, chosen: InitOptions) -> None:
    options = state.options
    if chosen.app is None or chosen.app != options.app:
        state.say(
            f"app: {options.app}, from {chosen.app or chosen.directory!r} (--app NAME: "
            "lower-case letters and digits, at most 20)"
        )
    if chosen.domain is None:
        state.say(
            f"domain: {options.domain} is a placeholder: set the domain the branch hosts "
            "live under (--domain)"
        )
    if chosen.registry is None:
        state.say(
            f"registry: {options.registry} is a guess: images are pushed as "
            f"<registry>/{options.app}-<image>; set your GHCR owner (--registry "
            "ghcr.io/OWNER)"
        )


def _route(
    state: _Adoption,
    routed: Sequence[tuple[ComposeService, dict[str, Any], tuple[str, int | None] | None]],
) -> None:
    """One routed service at `/`, the others at `/<name>/`; each health path through nginx."""
    preferred = ("web", "app", "frontend", "site", "ui")
    root = next((s for s, _, _ in routed if s.name in preferred), routed[0][0] if routed else None)
    for service, entry, check in routed:
        path = "/" if service is root else f"/{entry['name']}/"
        entry["path"] = path
        if check is not None and check[0] != "/healthz":
            entry["health"] = path.rstrip("/") + check[0]
            state.say(
                f"{service.name}: routed at {path}, port {entry['port']}, health "
                f"{entry['health']} (from its healthcheck)"
            )
        else:
            entry["health"] = path
            why = (
                "its healthcheck's /healthz is the edge nginx's own path"
                if check is not None
                else "it has no HTTP healthcheck"
            )
            state.say(
                f"{service.name}: routed at {path}, port {entry['port']}, health {path}: "
                f"a default ({why}); the gate needs 200s from it: point health at the "
                "app's health endpoint"
            )
        if path != "/":
            state.say(
                f"{service.name}: nginx passes the path on unchanged: the service sees "
                f"requests under {path}"
            )


def _config(state: _Adoption) -> dict[str, Any]:
    options = state.options
    config: dict[str, Any] = {
        "app": options.app,
        "domain": options.domain,
        "registry": options.registry,
        "images": state.images,
        "services": state.services,
    }
    if state.shared:
        config["shared"] = {kind: state.shared[kind] for kind in KINDS if kind in state.shared}
    config["branches"] = [
        {"match": "main", "host": "www", "production": True},
        {"match": "*"},
    ]
    if state.secrets:
        config["secrets"] = dict(sorted(state.secrets.items()))
    state.say(
        f"branches: main is production at www.{options.domain}, any other branch at "
        f"<slug>.{options.domain}; nothing routes those hosts until shared/traefik is set "
        "(image, acme_email) or a rule publishes a port (docs/config.md, branches)"
    )
    if state.secrets:
        variables = sorted({source["env"] for source in state.secrets.values()})
        state.say(
            f"secrets: a deploy reads {', '.join(variables)} from the deployer's "
            "environment (or --secrets-env-file FILE); none of their values is written"
        )
        known = set(state.options.env_file).union(*state.env_files.values())
        if missing := [var for var in variables if var not in known]:
            state.say(
                f"secrets: {', '.join(missing)} set nowhere init read: add each to .env "
                "(a new password of your own) or to the deployer's environment before "
                "check, plan and deploy"
            )
    return config


HEADER = """\
# Written by `swarm-deploy init` from {compose}: read its report, then
# `swarm-deploy check`. Every key is described in docs/config.md.
"""


def dump(config: Mapping[str, Any], compose: str) -> str:
    """The config's YAML text, with a header saying where it came from."""
    body = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, width=100)
    return HEADER.format(compose=compose) + body


# where the next steps reach the VM: the user writes their own
VM = "ssh://USER@VM"


def next_steps(env_file: str | None) -> str:
    """What to run after init: each command that reads secret values names the .env init
    read (`env_file`, None when there was none), each that reaches the VM names it."""
    values = f" --secrets-env-file {env_file}" if env_file else ""
    return "\n".join([
        "next steps:",
        f"  swarm-deploy check{values}",
        f"  swarm-deploy doctor --host {VM}",
        f"  swarm-deploy plan --branch develop --host {VM}{values}",
        f"  swarm-deploy deploy --branch develop --host {VM}{values}",
        f"(or set `target: {VM}` in swarm-deploy.yml and leave out --host)",
        *([] if env_file else [
            "(each secret's variable set in the environment, or --secrets-env-file FILE)"
        ]),
    ])  # fmt: skip
