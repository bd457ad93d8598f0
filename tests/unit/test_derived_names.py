"""Every name a config makes is valid for every program that reads it, or `check` refuses
the config: generated configs and branches, each name read back from what a deploy
would hand over (the rendered stacks and the plan's argv), held to each consumer's own
grammar. The grammars (swarm_deploy/grammars.py) are transcribed from the consumers'
sources; the first tests hold them to those sources' own test cases.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from swarm_deploy import config, grammars, pipeline, usecases
from swarm_deploy.errors import BranchError, ConfigError
from swarm_deploy.plan import Command, Migrate, RunJob
from tests.conftest import ROOT

DIGEST = "sha256:" + "f" * 64


# distribution/reference reference_test.go and regexp_test.go (TestParseReference...,
# TestFullNameRegexp): references it parses, and ones it refuses
@pytest.mark.parametrize(
    "reference",
    [
        "test_com", "test.com:tag", "test.com:5000", "test.com/repo:tag", "test:5000/repo",
        f"test:5000/repo:tag@{DIGEST}", "lowercase:Uppercase", "sub-dom1.foo.com/bar/baz/quux",
        "b.gcr.io/test.example.com/my-app:test.example.com", "foo_bar.com:8080",
        "192.168.1.1:5000/repo:5050", "[2001:db8::1]:5000/repo", "aa-a/a", "foo/foo_bar.com:8080",
        "example.com/some_separator__underscore/myimage", "a/" * 127 + "a:tag-puts-this-over-max",
    ],
)  # fmt: skip
def test_references_distribution_parses_are_accepted(reference: str) -> None:
    assert grammars.IMAGE_REFERENCE.accepts(reference)


@pytest.mark.parametrize(
    "reference",
    [
        "", ":justtag", f"@{DIGEST}", "Uppercase:tag", "test:5000/Uppercase/lowercase:tag",
        "domain/" + "a" * 256 + ":tag", "aa/asdf$$^/aa", "[2001:db8::1]", "a-/a/a/a",
        "foo/bar-", "_foo/bar", "docker_/docker_", "example.com/__underscore/myimage",
        "example.com/..dots/myimage", "a//a/a", "foo_bar.com:8080/app",
    ],
)  # fmt: skip
def test_references_distribution_refuses_are_refused(reference: str) -> None:
    assert not grammars.IMAGE_REFERENCE.accepts(reference)


def test_swarm_names_as_swarmkit_tests_them() -> None:
    """moby/swarmkit manager/controlapi/common_test.go and secret_test.go."""
    for good in ("name", "n-me", "n_me", "n-m-e", "n--d"):
        assert grammars.SWARM_NAME.accepts(good), good
    for bad in ("_nam", ".nam", "-nam", "nam-", "n/me", "n&me", "////", "a" * 64):
        assert not grammars.SWARM_NAME.accepts(bad), bad
    for good in ("0", "A", "name-with--dashes", "name.with..dots", "name_with__underscores",
                 "name.with-all_special", "a" * 64):  # fmt: skip
        assert grammars.SWARM_OBJECT_NAME.accepts(good), good
    for bad in ("", ".", "-", "_", "name.", "name-", "_name", "name_", "a/b", "with space",
                "with:colon", "snowman☃", "a" * 65):  # fmt: skip
        assert not grammars.SWARM_OBJECT_NAME.accepts(bad), bad


def test_host_names_as_rfc_1123_has_them() -> None:
    for good in ("develop", "3com", "a-b.example.com", "a" * 63 + ".com"):
        assert grammars.HOST_NAME.accepts(good), good
    for bad in (
        "gaia-develop-edge_data",
        "-a",
        "a-",
        "a..b",
        "a" * 64,
        ("a" * 62 + ".") * 4 + "bc",
    ):
        assert not grammars.HOST_NAME.accepts(bad), bad


# --- the property ------------------------------------------------------------------

EXAMPLE = pipeline.Project.load(ROOT / "swarm-deploy.yml")
# what the config's own pattern took before names were held to their consumers' grammars
OLD_NAME = r"[a-z][a-z0-9_]{0,29}"
names = st.from_regex(OLD_NAME, fullmatch=True)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    image_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    service_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    secret_names = draw(st.lists(names, max_size=2, unique=True))
    services: dict[str, Any] = {}
    for index, name in enumerate(service_names):
        service: dict[str, Any] = {"image": draw(st.sampled_from(image_names))}
        if index == 0:
            service |= {"port": 8000, "path": "/", "health": "/health"}
            service |= {"uses": ["postgres", "redis"], "migrate": ["migrate"]}
            service |= {
                "env": {draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)): "x"}
            }
        service["secrets"] = secret_names
        services[name] = service
    return {
        "app": draw(st.from_regex(r"[a-z][a-z0-9]{0,19}", fullmatch=True)),
        "domain": draw(st.sampled_from(["example.com", "apps.example.co.uk", "x.io"])),
        "registry": draw(
            st.sampled_from(
                ["ghcr.io/acme", "127.0.0.1:5000/acme", "registry.example.com:5000/a/b"]
            )
            | st.from_regex(
                r"[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[a-z0-9._-]{1,8}){0,2}", fullmatch=True
            )
        ),
        "images": {name: {"context": name} for name in image_names},
        "services": services,
        "shared": {
            "postgres": {
                "image": "postgres:16",
                "databases": draw(st.lists(names, min_size=1, max_size=2, unique=True)),
                "admin_password": "pgadmin",
            },
            "redis": {"image": "redis:7", "admin_password": "redisadmin"},
            "traefik": {"image": "traefik:v3.1", "acme_email": "ops@example.com"},
        },
        "branches": [
            {"match": "main", "host": draw(st.sampled_from(["www", "@", "{slug}"]))},
            {"match": "feature-*", "host": draw(st.sampled_from(["feat{1}", "{1}", "{slug}"]))},
            {"match": "*", "host": draw(st.sampled_from(["{slug}", "{1}-preview"]))},
        ],
        "secrets": {
            name: {"env": f"S_{name.upper()}"} for name in [*secret_names, "pgadmin", "redisadmin"]
        },
    }


branches = st.sampled_from(["main", "develop", "feature-1"]) | st.text(min_size=1, max_size=80)


def stack_names(the_plan: pipeline.Plan) -> dict[str, str]:
    """Each rendered stack file and the stack the plan deploys it as."""
    deploys = [
        list(action.argv)
        for step in the_plan.steps
        for action in step.actions
        if isinstance(action, Command) and action.argv[1:3] == ("stack", "deploy")
    ]
    return {argv[argv.index("--compose-file") + 1].split("/", 2)[2]: argv[-1] for argv in deploys}


def names_handed_over(
    files: dict[str, str], the_plan: pipeline.Plan
) -> Iterator[tuple[str, grammars.Grammar, str]]:
    """(name, the grammar of a program that reads it, where it was found)."""
    stacks = stack_names(the_plan)
    for path, stack in stacks.items():
        doc = yaml.safe_load(files[path])
        for key, spec in doc["services"].items():
            yield key, grammars.COMPOSE_KEY, path
            yield f"{stack}_{key}", grammars.SWARM_NAME, path
            yield spec["image"], grammars.IMAGE_REFERENCE, f"{path} {key}"
            env = spec.get("environment") or {}
            for variable in ("PGHOST", "MONGO_HOST"):
                if variable in env:
                    yield env[variable], grammars.HOST_NAME, f"{path} {key} {variable}"
            if "REDIS_URL" in env:
                host = urlsplit(env["REDIS_URL"]).hostname or ""
                yield host, grammars.HOST_NAME, f"{path} {key} REDIS_URL"
            for variable in ("PGUSER", "PGDATABASE"):
                if variable in env:
                    yield env[variable], grammars.POSTGRES_IDENTIFIER, f"{path} {key}"
            nets = spec.get("networks") or []
            for net in nets.values() if isinstance(nets, dict) else []:
                for alias in (net or {}).get("aliases", []):
                    yield alias, grammars.HOST_NAME, f"{path} {key} alias"
            labels = (spec.get("deploy") or {}).get("labels") or {}
            for label, value in labels.items():
                if label.endswith(".rule"):
                    (host,) = re.findall(r"Host\(`([^`]*)`\)", value)
                    yield host, grammars.HOST_NAME, f"{path} {label}"
        for section, grammar in (
            ("networks", grammars.SWARM_NAME),
            ("volumes", grammars.VOLUME_NAME),
            ("secrets", grammars.SWARM_OBJECT_NAME),
            ("configs", grammars.SWARM_OBJECT_NAME),
        ):
            for key, spec in (doc.get(section) or {}).items():
                yield key, grammars.COMPOSE_KEY, f"{path} {section}"
                name = (spec or {}).get("name") or f"{stack}_{key}"
                yield name, grammar, f"{path} {section}"
    for step in the_plan.steps:
        for action in step.actions:
            argv: list[str] = []
            if isinstance(action, Command | RunJob):
                argv = list(action.argv)
            if isinstance(action, Migrate):
                argv = action.argv_shown
            where = shlex.join(argv)[:80]
            for flag, grammar in (
                ("--name", grammars.SWARM_NAME),
                ("--network", grammars.SWARM_NAME),
                ("--tag", grammars.IMAGE_REFERENCE),
            ):
                for index, part in enumerate(argv[:-1]):
                    if part == flag:
                        yield argv[index + 1], grammar, where
            for index, part in enumerate(argv[:-1]):
                if part == "--secret":
                    source = argv[index + 1].split(",")[0].removeprefix("source=")
                    yield source, grammars.SWARM_OBJECT_NAME, where
            if argv[1:3] == ["secret", "create"]:
                yield argv[-2], grammars.SWARM_OBJECT_NAME, where
            if argv[1:2] == ["push"]:
                yield argv[2], grammars.IMAGE_REFERENCE, where
            if isinstance(action, RunJob) and "postgres-job" in argv:
                for name in argv[argv.index("postgres-job") + 1 :]:
                    yield name, grammars.POSTGRES_IDENTIFIER, where


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=configs(), branch=branches)
@example(  # the names of the field report: a service and image named `bot_`
    spec={
        "app": "gaia", "domain": "example.com", "registry": "ghcr.io/acme",
        "images": {"bot_": {"context": "bot"}},
        "services": {"bot_": {"image": "bot_", "port": 8000, "path": "/", "health": "/health",
                              "uses": ["postgres", "redis"]}},
        "shared": {"postgres": {"image": "postgres:16", "admin_password": "pgadmin"},
                   "redis": {"image": "redis:7", "admin_password": "redisadmin"}},
        "branches": [{"match": "*"}],
        "secrets": {"pgadmin": {"env": "S_PGADMIN"}, "redisadmin": {"env": "S_REDISADMIN"}},
    },
    branch="develop",
)  # fmt: skip
def test_every_derived_name_is_valid_for_each_consumer_or_check_refuses(
    spec: dict[str, Any], branch: str
) -> None:
    try:
        cfg = config.parse(yaml.safe_dump(spec, sort_keys=False))
    except ConfigError:
        event("check refuses the config")
        return
    try:
        cfg.branch(branch)
    except BranchError:
        event("the branch is refused before anything runs")
        return
    event("every name checked")
    project = pipeline.Project(cfg, EXAMPLE.templates)
    # the same templates: their Jinja environment, compiled once, serves every example
    project.__dict__["renderer"] = EXAMPLE.renderer
    environ = {source.env: "value" for source in cfg.secrets.values() if source.env}
    files, _ = pipeline.render(project, branch, "r1", environ=environ)
    the_plan = usecases.plan(usecases.PlanRequest(project, branch, "r1", environ=environ))
    for name, grammar, where in names_handed_over(files, the_plan):
        assert grammar.accepts(name), f"{name!r} ({where}) is not valid as {grammar.consumer}"
