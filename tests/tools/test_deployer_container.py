"""The Dagger deployer container's entry, and the SSH key it writes as OpenSSH reads it.

`ssh-keygen -y -f KEY` loads a private key with the same code ssh uses for an identity
file (measured: where it refuses a key, `ssh -i` to a real sshd refuses it too).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from swarm_deploy import deployer_container as container
from swarm_deploy.engine import Executor, Result


def keygen(*args: str) -> subprocess.CompletedProcess[bytes]:
    tool = shutil.which("ssh-keygen")
    assert tool is not None, "ssh-keygen is not installed (Debian: openssh-client)"
    return subprocess.run([tool, *args], capture_output=True, check=False, timeout=60)


def public_key(path: Path) -> subprocess.CompletedProcess[bytes]:
    path.chmod(0o600)
    return keygen("-y", "-f", str(path))


KINDS = {
    "ed25519": ["-t", "ed25519"],
    "rsa": ["-t", "rsa", "-b", "2048"],
    "rsa-pem": ["-t", "rsa", "-b", "2048", "-m", "PEM"],
}

# how a key gets damaged on its way into a secret store
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "no final newline": lambda key: key.rstrip(b"\n"),
    "CRLF": lambda key: key.replace(b"\n", b"\r\n"),
    "CRLF, no final newline": lambda key: key.replace(b"\n", b"\r\n").rstrip(b"\r\n"),
    "a blank line first": lambda key: b"\n" + key,
    "spaces at line ends": lambda key: key.replace(b"\n", b"  \n"),
    "flattened to one line": lambda key: b" ".join(key.split(b"\n")).strip(),
}


@pytest.fixture(scope="module", params=sorted(KINDS))
def key(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp(request.param) / "id"
    made = keygen("-q", *KINDS[request.param], "-N", "", "-C", "test", "-f", str(path))
    assert made.returncode == 0, made.stderr
    return path


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_key_is_read_by_openssh_once_rewritten(
    key: Path, damage: str, tmp_path: Path
) -> None:
    expected = public_key(key).stdout
    damaged = tmp_path / "damaged"
    damaged.write_bytes(DAMAGE[damage](key.read_bytes()))
    rewritten = tmp_path / "rewritten"
    rewritten.write_bytes(container.openssh_key(damaged.read_bytes()))
    result = public_key(rewritten)
    assert (result.returncode, result.stdout) == (0, expected), result.stderr


@pytest.mark.parametrize("damage", ["no final newline", "CRLF"])
def test_openssh_refuses_such_a_key_as_it_is(tmp_path: Path, damage: str) -> None:
    """The fault is real: an OpenSSH-format key saved this way is refused, byte for byte."""
    path = tmp_path / "id"
    assert keygen("-q", "-t", "ed25519", "-N", "", "-f", str(path)).returncode == 0
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    result = public_key(path)
    assert result.returncode == 255
    assert b"error in libcrypto" in result.stderr


def test_a_key_in_good_order_is_left_as_it_is(key: Path) -> None:
    assert container.openssh_key(key.read_bytes()) == key.read_bytes()


class RecordingExecutor(Executor):
    """Records what it is asked to run, runs nothing."""

    def __init__(self) -> None:
        super().__init__(Path())
        self.ran: list[tuple[list[str], bytes | None]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 900,
        shielded: bool = False,
    ) -> Result:
        self.ran.append((list(argv), stdin))
        return Result("", "", 0)


def test_the_entry_writes_the_key_for_ssh_alone_then_logs_in(key: Path, tmp_path: Path) -> None:
    mounted = tmp_path / "ssh-key"
    mounted.write_bytes(DAMAGE["CRLF, no final newline"](key.read_bytes()))
    written = tmp_path / "private" / "id_deploy"
    executor = RecordingExecutor()
    environ = {"SWARM_DEPLOY_REGISTRY_TOKEN": "t0ken", "SWARM_DEPLOY_REGISTRY_USER": "acme"}
    container.prepare("ghcr.io", environ, executor, key_mount=mounted, key=written)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert public_key(written).stdout == public_key(key).stdout
    assert executor.ran == [
        (["docker", "login", "--password-stdin", "--username", "acme", "ghcr.io"], b"t0ken")
    ]


def test_the_entry_hands_the_process_to_the_command(tmp_path: Path) -> None:
    """Its exit code is the command's (swarm-deploy's 1 and 2 reach `dagger call`)."""
    entry = [sys.executable, "-m", "swarm_deploy.deployer_container", "ghcr.io"]
    result = subprocess.run(
        [*entry, "sh", "-c", "echo ran; exit 3"],
        capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (3, "ran\n"), result.stderr
