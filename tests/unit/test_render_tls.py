"""Traefik's ports and certificates as rendered: the defaults (Let's Encrypt by HTTP-01 on
80 and 443), another CA and ports, and one wildcard certificate by DNS-01."""

from __future__ import annotations

from typing import Any

import yaml

from swarm_deploy import config, pipeline
from tests.conftest import ROOT
from tests.render_helpers import SENTINELS, render_branch
from tests.unit.test_config import merge

CLOUDFLARE_TOKEN = "sentinel-cloudflare-token-91c2d7"  # noqa: S105 - a sentinel
DNS = {
    "shared": {
        "traefik": {
            "ports": {"http": 18480, "https": 18443},
            "acme": {
                "ca_server": "https://pebble:14000/dir",
                "challenge": "dns",
                "dns": {
                    "provider": "exec",
                    "env": {"EXEC_PATH": "/usr/local/bin/challtestsrv-txt", "ON": "yes"},
                    "secrets": {"CF_DNS_API_TOKEN": "cloudflare_token"},
                    "resolvers": ["challtestsrv:8053", "[::1]:53"],
                    "delay": "1500ms",
                    "disable_ans_checks": True,
                    "require_all_rns": True,
                },
            },
        }
    },
    "secrets": {"cloudflare_token": {"env": "GAIA_CLOUDFLARE_TOKEN"}},
}


def rendered(project: pipeline.Project, patch: dict[str, Any], branch: str) -> dict[str, str]:
    data = merge(yaml.safe_load((ROOT / "swarm-deploy.yml").read_text()), patch)
    cfg = config.parse(yaml.safe_dump(data, sort_keys=False))
    environ = {**SENTINELS, "GAIA_CLOUDFLARE_TOKEN": CLOUDFLARE_TOKEN}
    files, warnings = pipeline.render(
        pipeline.Project(cfg, project.templates), branch, "0123456789ab", environ=environ
    )
    assert warnings == []
    return files


def traefik(files: dict[str, str]) -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(files["stacks/shared.yml"])["services"]["traefik"]
    return service


def acme_flags(files: dict[str, str]) -> list[str]:
    prefix = "--certificatesresolvers.letsencrypt.acme."
    return [flag for flag in traefik(files)["command"] if flag.startswith(prefix)]


def labels(files: dict[str, str], path: str, service: str) -> dict[str, str]:
    found: dict[str, str] = yaml.safe_load(files[path])["services"][service]["deploy"]["labels"]
    return found


def test_by_default_letsencrypt_issues_a_certificate_per_host_by_http_01(
    project: pipeline.Project,
) -> None:
    files = render_branch(project, "develop")
    assert acme_flags(files) == [
        "--certificatesresolvers.letsencrypt.acme.email=ops@gaia.example.com",
        "--certificatesresolvers.letsencrypt.acme.caserver="
        "https://acme-v02.api.letsencrypt.org/directory",
        "--certificatesresolvers.letsencrypt.acme.keytype=EC256",
        "--certificatesresolvers.letsencrypt.acme.storage=/letsencrypt/acme.json",
        "--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
    ]
    service = traefik(files)
    assert "--entrypoints.web.http.redirections.entrypoint.to=websecure" in service["command"]
    assert [(p["target"], p["published"]) for p in service["ports"]] == [(80, 80), (443, 443)]
    assert "environment" not in service
    assert "secrets" not in service
    edge = labels(files, "stacks/edge.yml", "nginx")
    grafana = labels(files, "stacks/shared.yml", "grafana")
    assert not [key for key in {**edge, **grafana} if ".tls.domains" in key]


def test_dns_01_renders_the_provider_its_checks_and_one_wildcard_for_every_router(
    project: pipeline.Project,
) -> None:
    files = rendered(project, DNS, "feature/x")
    assert acme_flags(files) == [
        "--certificatesresolvers.letsencrypt.acme.email=ops@gaia.example.com",
        "--certificatesresolvers.letsencrypt.acme.caserver=https://pebble:14000/dir",
        "--certificatesresolvers.letsencrypt.acme.keytype=EC256",
        "--certificatesresolvers.letsencrypt.acme.storage=/letsencrypt/acme.json",
        "--certificatesresolvers.letsencrypt.acme.dnschallenge.provider=exec",
        "--certificatesresolvers.letsencrypt.acme.dnschallenge.resolvers="
        "challtestsrv:8053,[::1]:53",
        "--certificatesresolvers.letsencrypt.acme.dnschallenge.propagation.delaybeforechecks=1500ms",
        "--certificatesresolvers.letsencrypt.acme.dnschallenge.propagation.disableanschecks=true",
        "--certificatesresolvers.letsencrypt.acme.dnschallenge.propagation.requireallrns=true",
    ]
    edge = labels(files, "stacks/edge.yml", "nginx")
    grafana = labels(files, "stacks/shared.yml", "grafana")
    router = "traefik.http.routers.gaia-feature-x-217d2b-edge"
    assert {k: v for k, v in edge.items() if ".tls." in k} == {
        f"{router}.tls.certresolver": "letsencrypt",
        f"{router}.tls.domains[0].main": "gaia.example.com",
        f"{router}.tls.domains[0].sans": "*.gaia.example.com",
    }
    assert {k: v for k, v in grafana.items() if ".tls." in k} == {
        "traefik.http.routers.gaia-shared-grafana.tls.certresolver": "letsencrypt",
        "traefik.http.routers.gaia-shared-grafana.tls.domains[0].main": "gaia.example.com",
        "traefik.http.routers.gaia-shared-grafana.tls.domains[0].sans": "*.gaia.example.com",
    }


def test_a_dns_credential_reaches_traefik_as_a_versioned_secret_file_never_its_value(
    project: pipeline.Project,
) -> None:
    files = rendered(project, DNS, "develop")
    service = traefik(files)
    # lego reads <NAME>_FILE; a YAML 1.1 word as a name stays a string
    assert service["environment"] == {
        "EXEC_PATH": "/usr/local/bin/challtestsrv-txt",
        "ON": "yes",
        "CF_DNS_API_TOKEN_FILE": "/run/secrets/cloudflare_token",
    }
    assert service["secrets"] == [{"source": "cloudflare_token", "target": "cloudflare_token"}]
    declared = yaml.safe_load(files["stacks/shared.yml"])["secrets"]["cloudflare_token"]
    assert declared["external"] is True
    assert declared["name"].startswith("gaia_shared_cloudflare_token_")
    for path, content in files.items():
        assert CLOUDFLARE_TOKEN not in content, path


def test_other_published_ports_are_what_http_redirects_to(project: pipeline.Project) -> None:
    files = rendered(project, {"shared": {"traefik": {"ports": {"http": 18480, "https": 18443}}}},
                     "develop")  # fmt: skip
    service = traefik(files)
    assert [(p["target"], p["published"]) for p in service["ports"]] == [
        (80, 18480),
        (443, 18443),
    ]
    # Traefik writes the port of a `:port` target into the redirect's URL
    assert "--entrypoints.web.http.redirections.entrypoint.to=:18443" in service["command"]
    assert "--entrypoints.web.address=:80" in service["command"]
    assert "--entrypoints.websecure.address=:443" in service["command"]


def test_a_private_cas_root_reaches_traefik_as_a_secret_file(project: pipeline.Project) -> None:
    patch = {
        "shared": {"traefik": {"acme": {"ca_server": "https://pebble:14000/dir",
                                        "ca_certificate": "pebble_root"}}},
        "secrets": {"pebble_root": {"env": "GAIA_CLOUDFLARE_TOKEN"}},
    }  # fmt: skip
    files = rendered(project, patch, "develop")
    flags = acme_flags(files)
    assert flags[1:3] == [
        "--certificatesresolvers.letsencrypt.acme.caserver=https://pebble:14000/dir",
        "--certificatesresolvers.letsencrypt.acme.cacertificates=/run/secrets/pebble_root",
    ]
    assert flags[-1] == "--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web"
    service = traefik(files)
    assert service["secrets"] == [{"source": "pebble_root", "target": "pebble_root"}]
    assert "environment" not in service
    declared = yaml.safe_load(files["stacks/shared.yml"])["secrets"]["pebble_root"]
    assert declared["name"].startswith("gaia_shared_pebble_root_")


def test_the_certificates_key_type_is_the_configs(project: pipeline.Project) -> None:
    patch = {"shared": {"traefik": {"acme": {"key_type": "RSA4096"}}}}
    flags = acme_flags(rendered(project, patch, "develop"))
    assert "--certificatesresolvers.letsencrypt.acme.keytype=RSA4096" in flags
