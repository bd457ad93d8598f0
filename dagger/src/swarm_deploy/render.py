"""Templates (template_files.py: packaged, or overridden next to the config) -> one branch's files.

Values from the config and the branch reach YAML only through the `q` filter: a JSON
string (valid YAML) with `$` doubled, because `docker stack deploy` interpolates `$`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from swarm_deploy import naming
from swarm_deploy.config import Branch, Config, Service
from swarm_deploy.datakinds import KINDS
from swarm_deploy.errors import RenderError
from swarm_deploy.stack_secrets import BranchSecrets

# Where each rendered file goes, relative to the output directory.
APP_TEMPLATE = "stacks/app.yml"
SHARED_STACK = "stacks/shared.yml"
EDGE_STACK = "stacks/edge.yml"
NGINX_CONF = "nginx/nginx.conf"
MAINTENANCE_PAGE = "nginx/maintenance.html"
PROMTAIL_CONF = "promtail/config.yml"
PROMETHEUS_CONF = "prometheus/prometheus.yml"
GRAFANA_DATASOURCES = "grafana/datasources.yml"
RELAY_CONF = "relay/haproxy.cfg"
AGENT_CONF = "prometheus/agent.yml"

# Configs of the shared stack, each rendered only when its service is in the config.
_SHARED_CONFIGS = (
    ("promtail", PROMTAIL_CONF, "promtail"),
    ("prometheus", PROMETHEUS_CONF, "prometheus"),
    ("grafana", GRAFANA_DATASOURCES, "grafana_datasources"),
)


# libyaml's parser where PyYAML has it: plans render every branch's files
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def colour_stack_file(colour: str) -> str:
    return f"stacks/app-{colour}.yml"


@dataclass(frozen=True)
class Release:
    """What a deploy ships: a version and each image's reference (tag, or digest once pushed)."""

    version: str
    images: Mapping[str, str]

    @classmethod
    def tagged(cls, config: Config, version: str) -> Release:
        return cls(
            version, {name: f"{config.image_repository(name)}:{version}" for name in config.images}
        )

    def fitted(self, config: Config) -> tuple[Release, dict[str, str]]:
        """This release as the config can run it: its images that the config names, and
        each service of the config whose image it lacks (service -> image). A release
        recorded earlier may predate an image the config added, or one it dropped."""
        images = {name: ref for name, ref in self.images.items() if name in config.images}
        lacking = {s.name: s.image for s in config.services.values() if s.image not in images}
        return Release(self.version, images), lacking


@dataclass(frozen=True)
class BranchFiles:
    """A branch's rendered files, the hash that says whether its edge changed, the names
    of the Swarm configs they create (`nginx_config`: the edge's nginx.conf), and the hash
    of each shared service's definition."""

    files: dict[str, str]
    edge_hash: str
    config_names: frozenset[str]
    shared_definitions: Mapping[str, str]
    nginx_config: str


@dataclass(frozen=True)
class Wiring:
    """How a colour service meets the rest: its environment and the secrets it mounts."""

    env: dict[str, str]
    secrets: tuple[str, ...]


def wiring(
    config: Config,
    branch: Branch,
    secrets: BranchSecrets,
    service: Service,
    colour: str,
    version: str,
) -> Wiring:
    """The stacks and one-shot jobs (migrations) of a service share this one definition."""
    names = branch.names
    relay = names.relay_host
    env = {
        "APP_NAME": config.app,
        "APP_BRANCH": branch.name,
        "APP_COLOUR": colour,
        "APP_VERSION": version,
        "APP_SERVICE": service.name,
    }
    if service.port is not None:
        env["PORT"] = str(service.port)
    mounted = list(service.secrets)
    for kind in KINDS.values():
        if kind.name in service.uses:
            env |= kind.environment(names, relay, config.shared[kind.name].databases)
            mounted += [kind.branch_key] if kind.branch_key in secrets.branch else []
    return Wiring({**env, **service.env}, tuple(mounted))


def relayed_kinds(config: Config) -> list[tuple[str, int]]:
    """The data services some colour service uses, by port: the branch's relay forwards these."""
    used = {kind for service in config.services.values() for kind in service.uses}
    return sorted(((k.name, k.port) for k in KINDS.values() if k.name in used), key=lambda k: k[1])


# What JSON leaves as it is but YAML does not take as it is: characters outside YAML's
# printable set (1.2, 5.1: DEL, C1 controls, U+FFFE, U+FFFF, lone surrogates) and those
# YAML 1.1 reads as line breaks (NEL, U+2028, U+2029). A git branch name may hold them.
_YAML_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")


def quote(value: object) -> str:
    """A YAML scalar or flow sequence for any value, safe from compose interpolation."""
    if isinstance(value, jinja2.Undefined):
        # what the template names does not exist: jinja's own error says which name
        value._fail_with_undefined_error()
    if isinstance(value, tuple):
        value = list(value)
    text = json.dumps(value, ensure_ascii=False).replace("$", "$$")
    return _YAML_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def fingerprint(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def definitions(stack: str) -> dict[str, str]:
    """Service -> 12 hex of the sha256 of its definition in a rendered stack file (anchors
    resolved, keys sorted): equal exactly when `docker stack deploy` gets the same."""
    services = yaml.load(stack, Loader=_YAML_LOADER)["services"]  # noqa: S506
    return {
        name: fingerprint(json.dumps(service, sort_keys=True))[:12]
        for name, service in services.items()
    }


def fix(name: str, overridden: Collection[str]) -> str:
    """What to do about a template that failed: fix an override; eject a packaged one."""
    if name in overridden:
        return f"fix the template {name}"
    return (
        f"{name} is the packaged template: `swarm-deploy templates eject {name}` copies it "
        "next to the config to fix it there (and please report it)"
    )


class Renderer:
    """Renders one branch's files from templates held in memory; `overridden`: the
    names whose text is the project's own, not the package's."""

    def __init__(self, templates: Mapping[str, str], overridden: Collection[str] = ()) -> None:
        self._overridden = frozenset(overridden)
        self._env = jinja2.Environment(
            loader=jinja2.DictLoader(dict(templates)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            autoescape=False,  # noqa: S701 - YAML and nginx, not HTML; values go through `q`
        )
        self._env.filters["q"] = quote
        self._env.globals["live_dir"] = naming.LIVE_DIR

    def _render(self, name: str, **context: Any) -> str:
        try:
            return self._env.get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"{name} line {line}" if line else name
            raise RenderError(f"template {where}: {exc}; {fix(name, self._overridden)}") from None

    def _render_yaml(self, name: str, **context: Any) -> str:
        text = self._render(name, **context)
        try:
            yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506
        except yaml.YAMLError as exc:
            raise RenderError(
                f"template {name} rendered invalid YAML ({exc}); {fix(name, self._overridden)}"
            ) from None
        return text

    def branch_files(
        self,
        config: Config,
        branch: Branch,
        release: Release,
        secrets: BranchSecrets,
        live_colour: str | None = None,
        state: Mapping[str, str] | None = None,
    ) -> BranchFiles:
        """Every file of a branch, keyed by its path relative to the output directory.

        Singletons run in `live_colour` only; the other colour's singletons are at 0.
        `state` (the labels a deploy recorded on the edge) is rendered into the edge stack,
        so that redeploying the edge keeps it; the edge's hash leaves it out.
        """
        common = {
            "config": config,
            "app": config.app,
            "branch": branch,
            "names": branch.names,
            "shared": config.shared_names,
            "secrets": secrets,
            "labels": branch.names.labels,
            "data_kinds": list(KINDS),
        }
        files = {
            NGINX_CONF: self._render(NGINX_CONF, **common),
            MAINTENANCE_PAGE: self._render(MAINTENANCE_PAGE, **common),
        }
        configs = {
            "nginx_conf": branch.names.secret("nginx_conf", fingerprint(files[NGINX_CONF])),
            "maintenance": branch.names.secret("maintenance", fingerprint(files[MAINTENANCE_PAGE])),
        }
        relayed = relayed_kinds(config)
        if relayed:
            files[RELAY_CONF] = self._render(RELAY_CONF, **common, relayed=relayed)
            configs["relay"] = branch.names.secret("relay", fingerprint(files[RELAY_CONF]))
        if any(service.metrics for service in config.services.values()):
            files[AGENT_CONF] = self._render_yaml(AGENT_CONF, **common, colours=naming.COLOURS)
            configs["agent"] = branch.names.secret("agent", fingerprint(files[AGENT_CONF]))
        for kind, path, config_name in _SHARED_CONFIGS:
            if kind in config.shared:
                files[path] = self._render_yaml(path, **common)
                configs[config_name] = config.shared_names.secret(
                    config_name, fingerprint(files[path])
                )
        shared_definitions: dict[str, str] = {}
        if config.shared:
            # each service's label holds the hash of its definition without that hash
            bare = self._render_yaml(SHARED_STACK, **common, configs=configs, definitions={})
            shared_definitions = definitions(bare)
            files[SHARED_STACK] = self._render_yaml(
                SHARED_STACK, **common, configs=configs, definitions=shared_definitions
            )
        bare_edge = self._render_yaml(EDGE_STACK, **common, configs=configs, state={})
        edge_files = (NGINX_CONF, MAINTENANCE_PAGE, RELAY_CONF, AGENT_CONF)
        edge_hash = fingerprint("".join(files.get(path, "") for path in edge_files) + bare_edge)
        files[EDGE_STACK] = (
            self._render_yaml(EDGE_STACK, **common, configs=configs, state=state)
            if state
            else bare_edge
        )
        for colour in naming.COLOURS:
            files[colour_stack_file(colour)] = self._render_yaml(
                APP_TEMPLATE,
                **common,
                colour=colour,
                wiring={
                    s.name: wiring(config, branch, secrets, s, colour, release.version)
                    for s in config.services.values()
                },
                release=release,
                singleton_replicas=1 if colour == live_colour else 0,
            )
        return BranchFiles(
            dict(sorted(files.items())),
            edge_hash,
            frozenset(configs.values()),
            shared_definitions,
            configs["nginx_conf"],
        )


def write(files: Mapping[str, str], out: Path) -> list[Path]:
    """Write rendered files under `out`; returns the paths written."""
    written = []
    for relative, content in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written
