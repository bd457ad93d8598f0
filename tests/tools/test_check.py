"""`swarm-deploy check` runs this machine's nginx -t on every rendered nginx.conf."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.testbed import copy_project

from swarm_deploy import pipeline, template_files
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.tools.edge_nginx import tool


def check(config: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("swarm-deploy")
    assert command is not None, "swarm-deploy is not on PATH (make venv)"
    return subprocess.run(
        [command, "check", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_an_nginx_syntax_error_is_found_offline_with_nginx_s_words(tmp_path: Path) -> None:
    tool("nginx")
    copy_project(ROOT, tmp_path)
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "swarm-deploy.yml")
    template = tmp_path / "nginx" / "nginx.conf"
    template.parent.mkdir()
    text = template_files.packaged("nginx/nginx.conf")
    template.write_text(text.replace("server_tokens off;", "server_tokens off", 1))
    # nginx reports the line where the unterminated directive ends: the next one's `;`
    rendered, _ = pipeline.render(pipeline.Project.load(tmp_path / "swarm-deploy.yml"), "main", "x")
    conf = rendered["nginx/nginx.conf"].splitlines()
    line = conf.index("    default_type application/octet-stream;") + 1
    result = check(tmp_path / "swarm-deploy.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: nginx -t (nginx/")
    assert lines[0].endswith(
        " on this machine) refused nginx/nginx.conf as rendered for branch main:"
    )
    # nginx's own line, as it prints it: `<time> [emerg] <pid>#<tid>: ...`
    assert re.fullmatch(
        r'.*\[emerg\] \d+#\d+: invalid number of arguments in "server_tokens" directive in '
        rf"nginx\.conf:{line}",
        lines[1],
    ), lines[1]
    assert lines[2:] == [
        "nginx: configuration file nginx.conf test failed",
        "next: fix the template nginx/nginx.conf; `swarm-deploy render --branch main --out DIR` "
        "writes the rendered file whose lines nginx counts",
    ]


def test_the_example_passes_nginx_t_here() -> None:
    result = check(EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("nginx -t: ok — nginx/")
