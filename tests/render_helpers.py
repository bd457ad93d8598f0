"""Rendering the example for a branch, with fixed sentinel secret values."""

from __future__ import annotations

from swarm_deploy import pipeline

RELEASE = "0123456789ab"
# Sentinel values: tests search every output for them and must never find one.
SENTINELS = {
    "GAIA_POSTGRES_ADMIN_PASSWORD": "sentinel-pg-admin-5b2f9c",
    "GAIA_MONGO_ADMIN_PASSWORD": "sentinel-mongo-admin-77e1d0",
    "GAIA_REDIS_ADMIN_PASSWORD": "sentinel-redis-admin-a61f3e",
    "GAIA_GRAFANA_ADMIN_PASSWORD": "sentinel-grafana-admin-0c4a11",
    "GAIA_SESSION_KEY": "sentinel-session-key-e93b57",
    "GAIA_TELEGRAM_TOKEN": "sentinel-telegram-token-4d8a20",
}
BRANCHES = [
    "develop",
    "main",
    "feature-1",
    "feature/JIRA-123_add-login",
    "renovate/pin-dependencies",
    "dependabot/npm_and_yarn/lodash-4.17.21",
    'feature/$(id); rm -rf "/" `x` ${HOME}',
    "feature/ünïcödé-naïve",
]


def render_branch(project: pipeline.Project, branch: str) -> dict[str, str]:
    files, warnings = pipeline.render(project, branch, RELEASE, environ=SENTINELS)
    assert warnings == []
    return files


def conf_from_before_live_files(conf: str) -> str:
    """A rendered nginx.conf as swarm-deploy rendered it before live/blue and live/green:
    the colour set by `include live/*.conf` (live/colour.conf, read on a reload)."""
    tests = conf[conf.index("        if (-f ") : conf.index("        location = /healthz")]
    return conf.replace(tests, "        include live/*.conf;\n\n")
