"""Packaged templates, the files next to the config that override them one by one,
`swarm-deploy templates` and what `check` says of the overrides."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from bench.testbed import copy_project
from click.testing import CliRunner

from swarm_deploy import __version__, cli, pipeline, template_files
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.render_helpers import SENTINELS

PACKAGED = ROOT / "dagger" / "src" / "swarm_deploy" / "templates"


def sha(name: str) -> str:
    return hashlib.sha256((PACKAGED / name).read_bytes()).hexdigest()[:12]


def header(name: str, digest: str) -> str:
    return (
        f"{{# swarm-deploy template {name}, ejected from swarm-deploy {__version__} "
        f"(packaged sha256:{digest}); `swarm-deploy check` warns once the packaged file "
        "differs from that #}\n"
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with only its app and swarm-deploy.yml; returns its directory."""
    copy_project(ROOT, tmp_path)
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "swarm-deploy.yml")
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_the_package_carries_every_template_and_the_repository_none() -> None:
    assert sorted(str(p.relative_to(PACKAGED)) for p in PACKAGED.rglob("*") if p.is_file()) == (
        sorted(template_files.TEMPLATE_FILES)
    )
    assert [folder for folder in template_files.FOLDERS if (ROOT / folder).exists()] == []


def test_a_project_of_only_its_config_renders_what_the_package_holds(project: Path) -> None:
    found = pipeline.Project.load(project / "swarm-deploy.yml")
    assert found.overrides == {}
    assert found.templates == {
        name: (PACKAGED / name).read_text() for name in template_files.TEMPLATE_FILES
    }


def test_a_file_next_to_the_config_overrides_that_file_alone(project: Path) -> None:
    write(project, "nginx/nginx.conf", "events {}\n")
    found = template_files.load(project)
    assert found.overrides == {"nginx/nginx.conf": "events {}\n"}
    assert found.texts == {
        name: "events {}\n" if name == "nginx/nginx.conf" else (PACKAGED / name).read_text()
        for name in template_files.TEMPLATE_FILES
    }


def test_an_ejected_template_renders_as_the_packaged_one(project: Path) -> None:
    packaged, _ = pipeline.render(pipeline.Project.load(project / "swarm-deploy.yml"), "main", "x")
    result = CliRunner().invoke(cli.main, ["templates", "eject"])
    assert result.exit_code == 0, result.output
    ejected = pipeline.Project.load(project / "swarm-deploy.yml")
    assert sorted(ejected.overrides) == sorted(template_files.TEMPLATE_FILES)
    assert pipeline.render(ejected, "main", "x")[0] == packaged


def test_eject_copies_a_folder_with_its_origin_and_never_overwrites(project: Path) -> None:
    write(project, "nginx/nginx.conf", "events {}\n")
    result = CliRunner().invoke(cli.main, ["templates", "eject", "nginx"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"wrote nginx/maintenance.html (from swarm-deploy {__version__})\n"
        "skipped nginx/nginx.conf: it exists and is kept; `swarm-deploy templates diff "
        "nginx/nginx.conf` shows how it differs from the packaged one\n"
    )
    assert (project / "nginx/nginx.conf").read_text() == "events {}\n"
    assert (project / "nginx/maintenance.html").read_text() == (
        header("nginx/maintenance.html", sha("nginx/maintenance.html"))
        + (PACKAGED / "nginx/maintenance.html").read_text()
    )
    assert sorted(p.name for p in project.iterdir()) == ["examples", "nginx", "swarm-deploy.yml"]


def test_eject_of_one_file_writes_that_file_only(project: Path) -> None:
    result = CliRunner().invoke(cli.main, ["templates", "eject", "stacks/app.yml"])
    assert result.output == f"wrote stacks/app.yml (from swarm-deploy {__version__})\n"
    assert [p.name for p in (project / "stacks").iterdir()] == ["app.yml"]


def test_eject_of_an_unknown_name_lists_the_names_there_are(project: Path) -> None:
    result = CliRunner().invoke(cli.main, ["templates", "eject", "nginx.conf"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for NAME: no template 'nginx.conf'; name a folder (grafana, "
        "nginx, prometheus, promtail, relay, stacks) or a file (stacks/shared.yml, "
        "stacks/edge.yml, stacks/app.yml, nginx/nginx.conf, nginx/maintenance.html, "
        "promtail/config.yml, prometheus/prometheus.yml, grafana/datasources.yml, "
        "relay/haproxy.cfg, prometheus/agent.yml), or nothing for all"
    )
    assert sorted(p.name for p in project.iterdir()) == ["examples", "swarm-deploy.yml"]


def overrides_of_every_age(project: Path) -> None:
    """stacks/app.yml ejected now and edited, nginx/nginx.conf ejected from another
    packaged file and edited, nginx/maintenance.html copied by hand and edited,
    relay/haproxy.cfg copied by hand."""
    CliRunner().invoke(cli.main, ["templates", "eject", "stacks/app.yml"])
    with (project / "stacks/app.yml").open("a") as app:
        app.write("# mine\n")
    nginx = (PACKAGED / "nginx/nginx.conf").read_text()
    mine = nginx.replace("    server_tokens off;\n", "    server_tokens off; # mine\n")
    write(project, "nginx/nginx.conf", header("nginx/nginx.conf", "0123456789ab") + mine)
    write(project, "nginx/maintenance.html", "<p>{{ app }} is starting</p>\n")
    write(project, "relay/haproxy.cfg", (PACKAGED / "relay/haproxy.cfg").read_text())


def test_check_lists_the_overrides_and_warns_of_an_older_or_unrecorded_one(
    project: Path,
) -> None:
    overrides_of_every_age(project)
    result = CliRunner().invoke(cli.main, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2] == (
        "templates overridden next to the config: "
        "stacks/app.yml: ejected from the packaged file as it is; "
        "nginx/nginx.conf: ejected from an older packaged file; "
        "nginx/maintenance.html: records no packaged file it was ejected from; "
        "relay/haproxy.cfg: the same as the packaged file (delete it to follow the "
        "package's updates)"
    )
    assert result.stderr == (
        f"warning: template nginx/nginx.conf was ejected from swarm-deploy {__version__} "
        "(packaged sha256:0123456789ab), and the packaged file changed since (now "
        f"sha256:{sha('nginx/nginx.conf')}): see `swarm-deploy templates diff "
        "nginx/nginx.conf`, bring over what you need, then update the sha256 in its first "
        "line\n"
        "warning: template nginx/maintenance.html overrides the packaged file and records no "
        "packaged file it was ejected from (no `{# swarm-deploy template ... #}` first "
        "line), so whether it is older cannot be told: see `swarm-deploy templates diff "
        "nginx/maintenance.html`\n"
    )


def test_check_of_a_project_without_overrides_says_every_one_is_packaged(
    project: Path,
) -> None:
    result = CliRunner().invoke(cli.main, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2] == (
        "templates overridden next to the config: none, every one is packaged"
    )
    assert result.stderr == ""


def test_diff_shows_the_change_without_the_eject_header(project: Path) -> None:
    overrides_of_every_age(project)
    result = CliRunner().invoke(cli.main, ["templates", "diff", "nginx/nginx.conf"])
    nginx = (PACKAGED / "nginx/nginx.conf").read_text().splitlines()
    at = nginx.index("    server_tokens off;") + 1
    context = nginx[at - 4 : at - 1]
    after = nginx[at : at + 3]
    assert result.output.splitlines() == [
        "--- packaged/nginx/nginx.conf",
        "+++ nginx/nginx.conf",
        f"@@ -{at - 3},7 +{at - 3},7 @@",
        *(f" {line}" for line in context),
        "-    server_tokens off;",
        "+    server_tokens off; # mine",
        *(f" {line}" for line in after),
    ]


def test_diff_of_a_packaged_template_says_it_is_not_overridden(project: Path) -> None:
    result = CliRunner().invoke(cli.main, ["templates", "diff", "relay"])
    assert result.output == (
        "relay is not overridden next to swarm-deploy.yml: the packaged one is used\n"
    )


def test_list_says_where_each_template_comes_from(project: Path) -> None:
    overrides_of_every_age(project)
    result = CliRunner().invoke(cli.main, ["templates", "list"])
    packaged = f"packaged (swarm-deploy {__version__})"
    assert result.output.splitlines() == [
        f"grafana/datasources.yml  {packaged}",
        "nginx/maintenance.html  overridden by nginx/maintenance.html: records no packaged "
        "file it was ejected from",
        "nginx/nginx.conf  overridden by nginx/nginx.conf: ejected from an older packaged file",
        f"prometheus/agent.yml  {packaged}",
        f"prometheus/prometheus.yml  {packaged}",
        f"promtail/config.yml  {packaged}",
        "relay/haproxy.cfg  overridden by relay/haproxy.cfg: the same as the packaged file "
        "(delete it to follow the package's updates)",
        "stacks/app.yml  overridden by stacks/app.yml: ejected from the packaged file as it is",
        f"stacks/edge.yml  {packaged}",
        f"stacks/shared.yml  {packaged}",
    ]
