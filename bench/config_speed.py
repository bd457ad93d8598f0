"""How long reading the config, `check` and `plan` take for a config with 50 branch rules.

    python -m bench.config_speed [--rules 50] [--runs 7] [--keep DIR]

Makes a project of its own (the example app and swarm-deploy.yml with `--rules` branch
rules; the templates are the package's), then prints the median of `--runs` runs of:
reading and validating the config in this process, and `swarm-deploy check` and
`swarm-deploy plan --branch feature3/x` as whole processes (what a user waits for;
`check` renders every rule's branch and runs nginx -t on each where nginx is installed).
No engine, no network.
`--keep DIR` writes the project there and keeps it, to time the commands with another
tool. The package measured is the one Python imports (PYTHONPATH chooses another).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.testbed import copy_project
from swarm_deploy import config

ROOT = Path(__file__).resolve().parent.parent
# dummy values: `plan` reads every secret's source
SECRETS = {
    f"GAIA_{name}": "bench-only"
    for name in (
        "POSTGRES_ADMIN_PASSWORD",
        "MONGO_ADMIN_PASSWORD",
        "REDIS_ADMIN_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "SESSION_KEY",
        "TELEGRAM_TOKEN",
    )
}


def make_project(to: Path, rules: int) -> Path:
    """The example app with `rules` branch rules: main, develop and teams' wildcards."""
    copy_project(ROOT, to)
    data = yaml.safe_load((ROOT / "swarm-deploy.yml").read_text())
    teams = [{"match": f"feature{n}/*", "host": f"f{n}-{{1}}"} for n in range(rules - 2)]
    data["branches"] = [*data["branches"][:2], *teams]
    path = to / "swarm-deploy.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def median_seconds(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # the first warms caches and is not counted
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def command(project: Path, *args: str) -> Callable[[], object]:
    env = {**os.environ, **SECRETS}
    argv = [shutil.which("swarm-deploy") or "swarm-deploy", *args]
    return lambda: subprocess.run(argv, cwd=project, env=env, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="config-speed-"))
    try:
        path = make_project(root, args.rules)
        text = path.read_text()
        figures = {
            "read the config (in process)": median_seconds(
                lambda: config.parse(text, root=root), args.runs * 10
            ),
            "swarm-deploy check": median_seconds(command(root, "check"), args.runs),
            "swarm-deploy plan": median_seconds(
                command(root, "plan", "--branch", "feature3/x"), args.runs
            ),
        }
        print(f"{args.rules} branch rules, package {config.__file__}")
        for what, seconds in figures.items():
            print(f"  {what:32} {seconds * 1000:8.1f} ms (median)")
    finally:
        if args.keep is None:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
