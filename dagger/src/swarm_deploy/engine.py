"""The one place that acts on a Docker engine: docker argv, and Engine API reads.

`Executor` runs the argv that commands.py builds, writing a secret's value to stdin
when a step asks for one (never to argv). `Swarm` reads services, tasks, secrets and
nodes through the docker SDK; over ssh:// it runs the same OpenSSH the docker CLI
runs, so one ~/.ssh/config (key, pinned host key, ControlMaster) serves both: one ssh
process per command forwards the Docker socket (`SshForward`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import docker
from docker.errors import APIError, DockerException, NotFound

from swarm_deploy import commands
from swarm_deploy.commands import LOCAL
from swarm_deploy.errors import CommandError, TargetError

Json = dict[str, Any]

_STAMP = re.compile(r"(?P<head>[^.Z+]+T[\d:]+)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?")


def parse_time(stamp: str) -> datetime:
    """An Engine timestamp, in UTC. It carries nanoseconds (Python keeps microseconds)
    and `Z`, or the daemon's own offset (`/info`'s SystemTime: `+01:00`)."""
    found = _STAMP.fullmatch(stamp)
    if found is None:
        raise ValueError(f"not an Engine timestamp: {stamp!r}")
    micro = ((found["fraction"] or "") + "000000")[:6]
    zone = found["zone"] if found["zone"] not in (None, "Z") else "+00:00"
    return datetime.fromisoformat(f"{found['head']}.{micro}{zone}").astimezone(UTC)


def manager_problem(target: str, info: Json) -> str | None:
    """Why the engine at `target` cannot take a deploy (from its `/info`), with the fix;
    None when it is a swarm manager."""
    swarm = info.get("Swarm", {})
    if swarm.get("LocalNodeState") != "active":
        return (
            f"{target} is not part of a swarm (state: {swarm.get('LocalNodeState')}); "
            "run `docker swarm init` there first"
        )
    if not swarm.get("ControlAvailable"):
        return f"{target} is a swarm worker; deploy through a manager node"
    return None


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    returncode: int


class ArgvRunner(Protocol):
    """What the deploy machinery runs argv through: Executor, or a stand-in."""

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 900,
        shielded: bool = False,
    ) -> Result: ...

    def pipe(
        self, producer: Sequence[str], consumer: Sequence[str], timeout: float = 1800
    ) -> None: ...


class SwarmApi(Protocol):
    """What the deploy machinery reads (and removes) through the Engine API: Swarm, or a
    stand-in. Its answers are the Engine's JSON, which facts.py reads into values."""

    target: str

    @property
    def info(self) -> Json: ...

    def require_manager(self) -> None: ...

    def services(self, labels: Mapping[str, str]) -> list[Json]: ...

    def service(self, name: str) -> Json | None: ...

    def tasks(self, service_ids: Sequence[str]) -> list[Json]: ...

    def secrets(self, labels: Mapping[str, str]) -> list[Json]: ...

    def configs(self, labels: Mapping[str, str]) -> list[Json]: ...

    def config(self, name: str) -> Json | None: ...

    def relabel_config(self, config_id: str, labels: Mapping[str, str]) -> bool: ...

    def now(self) -> datetime: ...

    def another(self, timeout: int) -> SwarmApi: ...

    def volume(self, name: str) -> Json | None: ...

    def containers(self, labels: Mapping[str, str]) -> list[str]: ...

    def remove_containers(self, labels: Mapping[str, str]) -> None: ...

    def node(self, node_id: str) -> Json: ...

    def nodes(self) -> list[Json]: ...

    def remove_service(self, name: str) -> None: ...

    def service_logs(self, service_id: str, tail: int = 20) -> str: ...

    def close(self) -> None: ...


class Executor:
    """Runs argv in the project directory; the only place a command's subprocess starts
    (the Engine API's ssh forward is SshForward's)."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        # ssh:// target -> the forward of its Docker socket
        self.forwards: dict[str, SshForward] = {}

    def reach_through(self, swarm: Swarm) -> None:
        """Run `docker --host T` for the swarm's target T through its ssh forward, when it
        has one: no ssh session of their own. Commands are shown as built, with T."""
        if swarm.forward is not None:
            self.forwards[swarm.target] = swarm.forward

    def routed(self, argv: Sequence[str]) -> list[str]:
        """`argv` as it runs: `docker --host T ...` through T's forward, if it has one (up
        again after a cut connection; else over ssh, as built)."""
        if len(argv) > 2 and argv[0] == "docker" and argv[1] == "--host":
            forward = self.forwards.get(argv[2])
            if forward is not None and forward.up():
                return ["docker", "--host", forward.url, *argv[3:]]
        return list(argv)

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 900,
        shielded: bool = False,
    ) -> Result:
        """`shielded`: in a process group of its own, out of reach of the signals a
        terminal sends to this one (Ctrl-C), for a command run while they are held
        (interrupts.held) that must end on its own."""
        shown = shlex.join(argv)
        try:
            proc = subprocess.run(
                self.routed(argv),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                cwd=self.cwd,
                env=self.env,
                timeout=timeout,
                check=False,
                process_group=0 if shielded else None,
            )
        except FileNotFoundError:
            raise TargetError(f"{argv[0]} is not installed or not on PATH; install it") from None
        except subprocess.TimeoutExpired:
            raise TargetError(f"`{shown}` did not finish within {timeout:g}s") from None
        result = Result(
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
            proc.returncode,
        )
        if check and result.returncode != 0:
            raise CommandError(shown, result.returncode, result.stderr or result.stdout)
        return result

    def pipe(self, producer: Sequence[str], consumer: Sequence[str], timeout: float = 1800) -> None:
        """`producer | consumer`, both argv, without a shell; either failing fails it."""
        shown = f"{shlex.join(producer)} | {shlex.join(consumer)}"
        try:
            with subprocess.Popen(
                self.routed(producer), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.cwd,
                env=self.env,
            ) as first:  # fmt: skip
                second = subprocess.run(
                    self.routed(consumer), stdin=first.stdout, capture_output=True, cwd=self.cwd,
                    env=self.env, timeout=timeout, check=False,
                )  # fmt: skip
                assert first.stdout is not None
                first.stdout.close()
                first_err = first.stderr.read() if first.stderr else b""
                first.wait(timeout=60)
        except FileNotFoundError as exc:
            raise TargetError(f"{exc.filename} is not installed or not on PATH") from None
        except subprocess.TimeoutExpired:
            raise TargetError(f"`{shown}` did not finish within {timeout:g}s") from None
        if first.returncode != 0:
            raise CommandError(shown, first.returncode, first_err.decode(errors="replace"))
        if second.returncode != 0:
            raise CommandError(shown, second.returncode, second.stderr.decode(errors="replace"))


class SshForward:
    """One OpenSSH process (commands.ssh_forward) forwarding a Unix socket in a private
    directory here to the Docker socket on an ssh:// target, for one command's Engine API
    calls and docker commands. The docker SDK's own ssh transport starts an ssh process
    per request (docker/docker-py#2966): 0.11-0.4 s a call on the three-node test bed,
    dozens of calls a deploy; through the forward the SDK keeps its connections open.
    A forward whose connection was cut is started again, on the same socket, by `up()`."""

    def __init__(self, target: str, remote: str, wait: float = 30) -> None:
        self.target, self.remote, self.wait = target, remote, wait
        self.directory = Path(tempfile.mkdtemp(prefix="swarm-deploy-"))
        self.socket = self.directory / "docker.sock"
        self._process: subprocess.Popen[bytes] | None = None
        if not self.up():
            why = self.close() or f"no forward after {wait:g}s"
            raise TargetError(f"ssh to {target} did not forward {remote}: {why}")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def up(self) -> bool:
        """Whether the forward runs, started again first if its ssh exited."""
        if self.running:
            return True
        self._stop()
        self.socket.unlink(missing_ok=True)
        with (self.directory / "ssh.err").open("wb") as errors:
            # a session of its own: the terminal's Ctrl-C is the deployer's to handle, and
            # the forward must outlive it until the deployer has cleaned up
            self._process = subprocess.Popen(
                commands.ssh_forward(self.target, str(self.socket), self.remote),
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.wait
        while not self.socket.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> str:
        """Stop ssh and remove the directory; what ssh said last on stderr."""
        self._stop()
        said = (self.directory / "ssh.err").read_text(errors="replace").strip()
        shutil.rmtree(self.directory, ignore_errors=True)
        return said

    def _stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        if self._process.stdin is not None:
            self._process.stdin.close()


class Swarm:
    """Engine API reads and deletions on the target, through the docker SDK: over ssh://
    through one SshForward to `socket` on the target, or, where the server refuses to
    forward it (AllowTcpForwarding no), the SDK's ssh process per request."""

    def __init__(self, target: str, timeout: int = 60, socket: str = commands.DOCKER_SOCKET):
        self.target, self.socket = target, socket
        self.forward: SshForward | None = None
        try:
            forwarded = self._through_forward(timeout) if target.startswith("ssh://") else None
            self.client = forwarded or (
                docker.from_env(timeout=timeout, use_ssh_client=True)
                if target == LOCAL
                else docker.DockerClient(base_url=target, timeout=timeout, use_ssh_client=True)
            )
            self.api = self.client.api
            self._info: Json = self.api.info()
        except (DockerException, OSError) as exc:
            self._close_forward()
            raise TargetError(
                f"cannot reach the Docker engine at {target} ({exc}); check that docker runs "
                "there and, for ssh://, that `ssh` to it works without a prompt"
            ) from None

    def _through_forward(self, timeout: int) -> docker.DockerClient | None:
        """A client through a forward of `socket`, once the engine answered through it;
        None when ssh does not forward it (the server's AllowTcpForwarding)."""
        try:
            self.forward = SshForward(self.target, self.socket)
            # the client asks the engine its API version: the forward's first use
            return docker.DockerClient(base_url=self.forward.url, timeout=timeout)
        except (TargetError, DockerException, OSError):
            self._close_forward()
            return None

    def _close_forward(self) -> None:
        if self.forward is not None:
            self.forward.close()
        self.forward = None

    def _call(
        self, what: str, call: Any, *args: Any, missing_ok: bool = False, **kwargs: Any
    ) -> Any:
        """One Engine API call (reads and removals: safe to repeat); its failures become
        TargetErrors that say what to do. A dropped connection is retried once, on a new
        one. `missing_ok`: what the call names is not there, and that is fine (None)."""
        lost: Exception | None = None
        for _ in range(2):
            try:
                return call(*args, **kwargs)
            except APIError as exc:
                if missing_ok and isinstance(exc, NotFound):
                    return None
                raise TargetError(
                    f"{what} failed on {self.target}: {exc.explanation or exc}"
                ) from None
            except (DockerException, OSError) as exc:  # requests' connection errors are OSErrors
                lost = exc
                time.sleep(1)
                if self.forward is not None:
                    self.forward.up()
        raise TargetError(
            f"lost the connection to {self.target} while {what} ({lost}); run the same "
            "command again: it picks up from what the target holds"
        )

    @property
    def info(self) -> Json:
        return self._info

    def require_manager(self) -> None:
        problem = manager_problem(self.target, self._info)
        if problem is not None:
            raise TargetError(problem)

    def version(self) -> Json:
        """The engine's `/version`: its Version, ApiVersion, Os and Arch."""
        result: Json = self._call("reading the engine's version", self.api.version)
        return result

    def services(self, labels: Mapping[str, str]) -> list[Json]:
        """Services whose labels include all of `labels`, with their task counts."""
        label_filter = [f"{k}={v}" for k, v in labels.items()]
        result: list[Json] = self._call(
            "listing services", self.api.services, filters={"label": label_filter}, status=True
        )
        return result

    def service(self, name: str) -> Json | None:
        result: Json | None = self._call(
            f"inspecting {name}", self.api.inspect_service, name, missing_ok=True
        )
        return result

    def tasks(self, service_ids: Sequence[str]) -> list[Json]:
        if not service_ids:
            return []
        result: list[Json] = self._call(
            "listing tasks", self.api.tasks, filters={"service": list(service_ids)}
        )
        return result

    def secrets(self, labels: Mapping[str, str]) -> list[Json]:
        label_filter = [f"{k}={v}" for k, v in labels.items()]
        result: list[Json] = self._call(
            "listing secrets", self.api.secrets, filters={"label": label_filter}
        )
        return result

    def configs(self, labels: Mapping[str, str]) -> list[Json]:
        label_filter = [f"{k}={v}" for k, v in labels.items()]
        result: list[Json] = self._call(
            "listing configs", self.api.configs, filters={"label": label_filter}
        )
        return result

    def config(self, name: str) -> Json | None:
        found: list[Json] = self._call(
            "listing configs", self.api.configs, filters={"name": [name]}
        )
        return next((c for c in found if c["Spec"]["Name"] == name), None)

    def relabel_config(self, config_id: str, labels: Mapping[str, str]) -> bool:
        """Set labels on a config, the one part of it that can change; the manager stamps
        its UpdatedAt. The write names the version it read (the Engine refuses a stale
        one). False when the config is gone."""

        api: Any = self.api  # docker-py has no call for this endpoint: its own helpers

        def update() -> bool:
            current = api.inspect_config(config_id)
            spec = {
                "Name": current["Spec"]["Name"],
                "Labels": {**(current["Spec"].get("Labels") or {}), **labels},
            }
            response = api._post_json(
                api._url("/configs/{0}/update", config_id),
                params={"version": current["Version"]["Index"]},
                data=spec,
            )
            api._raise_for_status(response)
            return True

        found: bool | None = self._call(f"updating the config {config_id}", update, missing_ok=True)
        return found is not None

    def now(self) -> datetime:
        """The manager's clock (`/info` SystemTime), which stamps CreatedAt and UpdatedAt:
        ages of Swarm objects are measured on it, never on the deployer's."""
        info: Json = self._call("reading the manager's clock", self.api.info)
        return parse_time(info["SystemTime"])

    def another(self, timeout: int) -> Swarm:
        """A second connection to the same engine, for a thread of its own."""
        return Swarm(self.target, timeout, self.socket)

    def volume(self, name: str) -> Json | None:
        """A volume on the node this client talks to."""
        result: Json | None = self._call(
            f"inspecting the volume {name}", self.api.inspect_volume, name, missing_ok=True
        )
        return result

    def containers(self, labels: Mapping[str, str]) -> list[str]:
        """Names of the containers on the node this client talks to, stopped ones too."""
        label_filter = [f"{k}={v}" for k, v in labels.items()]
        found: list[Json] = self._call(
            "listing containers", self.api.containers, all=True, filters={"label": label_filter}
        )
        return [c["Names"][0].lstrip("/") for c in found]

    def remove_containers(self, labels: Mapping[str, str]) -> None:
        """Remove stopped containers on this node: a removed job leaves its own behind."""
        label_filter = [f"{k}={v}" for k, v in labels.items()]
        found: list[Json] = self._call(
            "listing containers", self.api.containers, all=True, filters={"label": label_filter}
        )
        for container in found:
            # still running, or already gone: the next run tries again
            with contextlib.suppress(NotFound, APIError):
                self.api.remove_container(container["Id"])

    def node(self, node_id: str) -> Json:
        result: Json = self._call("inspecting a node", self.api.inspect_node, node_id)
        return result

    def nodes(self) -> list[Json]:
        result: list[Json] = self._call("listing nodes", self.api.nodes)
        return result

    def remove_service(self, name: str) -> None:
        self._call(f"removing {name}", self.api.remove_service, name, missing_ok=True)

    def service_logs(self, service_id: str, tail: int = 20) -> str:
        try:
            raw = self.api.service_logs(service_id, stdout=True, stderr=True, tail=str(tail))
        except APIError:
            return ""
        return (
            b"".join(raw).decode(errors="replace") if not isinstance(raw, bytes) else raw.decode()
        )

    def close(self) -> None:
        self.client.close()
        self._close_forward()
