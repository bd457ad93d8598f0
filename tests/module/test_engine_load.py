"""The module installed the way the Dagger engine installs it, then registered.

When `dagger call` loads a Python module, the engine's Python runtime (dagger/dagger
`sdk/python/runtime`, read at the tag in dagger.json, see scripts/dagger-sdk) copies
the module's source, vendors the SDK into `./sdk` as `dagger-io` version 0.0.0, and
runs one of three install sequences with the uv it bundles (`WithUpdates`, then
`WithInstall`, main.go):

    uv.lock present            uv lock; uv sync --no-dev
    requirements.lock present  uv pip compile ...; uv pip install -e ./sdk -e . -r ...
    neither                    uv pip install -e ./sdk -e .; uv pip check

This test replays whichever applies, with that uv (from PyPI) and the runtime's own
environment variables, on a copy of the module laid out as the engine lays it out
(tracked files only, `.venv` and `sdk` replaced), then imports the main object through
the `dagger.mod` entry point and registers it, as the runtime's entrypoint does. The one
stand-in: this machine's Python 3.11 plays the base image's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.dagger.conftest import FUNCTIONS

SCRIPT = ROOT / "scripts" / "dagger-sdk"
MODULE_SOURCE = ROOT / "dagger"


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
    return result


def tool(*args: str) -> str:
    return run([sys.executable, str(SCRIPT), *args], ROOT, dict(os.environ)).stdout


def lay_out(context: Path) -> Path:
    """The module source as the engine mounts it: what git tracks, and the SDK in ./sdk."""
    tracked = run(["git", "ls-files", "-z", "dagger"], ROOT, dict(os.environ)).stdout
    for name in filter(None, tracked.split("\0")):
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, target)
    source = context / "dagger"
    tool("sdk", str(source / "sdk"))
    return source


def runtime_env(tmp: Path, python: Path) -> dict[str, str]:
    """The variables `WithBase`, `WithSource` and `WithInstall` set, plus where uv caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    return env | {
        "UV_SYSTEM_PYTHON": "1",
        "UV_LINK_MODE": "copy",
        "UV_NATIVE_TLS": "1",
        "UV_PROJECT_ENVIRONMENT": str(tmp / "opt-venv"),
        "UV_COMPILE_BYTECODE": "1",
        "UV_PYTHON": str(python),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(Path.home() / ".cache" / "swarm-deploy" / "uv-cache"),
        "DAGGER_MODULE": "swarm-deploy",
        "DAGGER_DEFAULT_PYTHON_PACKAGE": "swarm_deploy",
        "DAGGER_MAIN_OBJECT": "SwarmDeploy",
        "DAGGER_MODULE_FILE": str(tmp / "module.json"),
    }


def install(source: Path, uv: str, env: dict[str, str]) -> Path:
    """Runs the runtime's install sequence; returns the Python of the environment it made."""
    if (source / "uv.lock").exists():
        run([uv, "lock"], source, env)
        run([uv, "sync", "--no-dev"], source, env)
        return Path(env["UV_PROJECT_ENVIRONMENT"]) / "bin" / "python"
    install = [uv, "pip", "install", "-e", "./sdk", "-e", "."]
    if (source / "requirements.lock").exists():
        run([uv, "pip", "compile", "-q", "--universal", "-o", "requirements.lock",
             "pyproject.toml", "sdk/pyproject.toml"], source, env)  # fmt: skip
        install += ["--no-deps", "-r", "requirements.lock"]
    run(install, source, env)
    run([uv, "pip", "check"], source, env)
    return Path(env["UV_PYTHON"])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the laid-out module source, the environment's Python, the runtime's env)."""
    tmp = tmp_path_factory.mktemp("engine-load")
    source = lay_out(tmp / "context")
    # the base image's interpreter, as a venv of this machine's Python 3.11 so that
    # UV_SYSTEM_PYTHON installs land here and never in the machine's own Python
    run([sys.executable, "-m", "venv", str(tmp / "system")], tmp, dict(os.environ))
    env = runtime_env(tmp, tmp / "system" / "bin" / "python")
    python = install(source, tool("uv").strip(), env)
    return source, python, env


def test_the_runtime_installs_the_module_and_registers_every_function(
    loaded: tuple[Path, Path, dict[str, str]],
) -> None:
    source, python, env = loaded
    result = run([str(python), str(ROOT / "tests" / "module" / "register.py")], source, env)
    registered = json.loads(result.stdout)
    assert set(registered) == FUNCTIONS
    assert registered["deploy"][:3] == ["branch", "release", "host"]


def test_the_runtime_s_module_renders_its_own_templates_for_a_bare_project(
    loaded: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    """A project of nothing but its config: every template comes from the installed
    module's package, as tracked in dagger/src/swarm_deploy/templates/."""
    source, python, env = loaded
    read = (
        "import json, sys, pathlib; from swarm_deploy import template_files as t; "
        "found = t.load(pathlib.Path(sys.argv[1])); print(json.dumps([found.texts, t.__file__]))"
    )
    result = run([str(python), "-c", read, str(tmp_path)], tmp_path, env)
    texts, module = json.loads(result.stdout)
    assert Path(module).is_relative_to(source)
    packaged = MODULE_SOURCE / "src" / "swarm_deploy" / "templates"
    assert texts == {name: (packaged / name).read_text() for name in texts}
    assert sorted(texts) == sorted(str(p.relative_to(packaged)) for p in packaged.rglob("*.*"))


def test_the_runtime_finds_the_lock_it_was_given(loaded: tuple[Path, Path, dict[str, str]]) -> None:
    """`uv lock` in the engine rewrites a stale lock silently, resolving anew on every
    load: the committed lock must be exactly what the engine's uv would write."""
    source, _, _ = loaded
    assert (source / "uv.lock").read_text() == (MODULE_SOURCE / "uv.lock").read_text(), (
        "dagger/uv.lock is stale: run `make lock` and commit it"
    )


def test_test_tools_stay_out_of_the_runtime(loaded: tuple[Path, Path, dict[str, str]]) -> None:
    _, python, env = loaded
    names = "import importlib.metadata as m; print(*(d.name for d in m.distributions()))"
    installed = set(run([str(python), "-c", names], ROOT, env).stdout.lower().split())
    assert {"swarm-deploy", "dagger-io", "docker", "httpx"} <= installed
    assert not {"pytest", "mypy", "ruff", "hypothesis"} & installed


def test_pip_installs_what_the_lock_says() -> None:
    """Outside the engine, pip installs from constraints.txt: the same versions."""
    assert tool("constraints") == (MODULE_SOURCE / "constraints.txt").read_text(), (
        "dagger/constraints.txt differs from dagger/uv.lock: run `make lock` and commit both"
    )
