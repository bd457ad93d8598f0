"""Secret values: masked everywhere, readable only on purpose."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from swarm_deploy.errors import ConfigError, SecretSourceError

MASK = "********"


@dataclass(frozen=True)
class SecretValue:
    """A secret's bytes; `repr`, `str` and formatting never show them."""

    _value: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"SecretValue({MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def reveal(self) -> bytes:
        """The bytes, for the one place that writes them to `docker secret create`'s stdin."""
        return self._value

    def fingerprint(self) -> str:
        """sha256 of the value, the version in a secret's name."""
        return hashlib.sha256(self._value).hexdigest()


@dataclass(frozen=True)
class SecretSource:
    """Where a secret's value comes from: an environment variable or a file."""

    name: str
    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"

    def read(
        self, environ: Mapping[str, str] | None = None, base: Path | None = None
    ) -> SecretValue:
        """Read the value now; raises SecretSourceError saying how to provide it."""
        if self.env is not None:
            env = os.environ if environ is None else environ
            if self.env not in env:
                raise SecretSourceError(
                    f"secret '{self.name}': environment variable {self.env} is not set; "
                    f"export it (for example `export {self.env}=...`) or change "
                    f"secrets/{self.name} in the config"
                )
            return SecretValue(env[self.env].encode())
        assert self.file is not None
        path = Path(self.file).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        try:
            return SecretValue(path.read_bytes().rstrip(b"\r\n"))
        except OSError as exc:
            raise SecretSourceError(
                f"secret '{self.name}': cannot read file {path} ({exc.strerror}); "
                f"create it or change secrets/{self.name} in the config"
            ) from None


def parse_env(text: str, where: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped; CRLF line ends are line
    ends. An error names the line, never shows it."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(
                f"{where} line {number}", "should be KEY=VALUE (the line is not shown)"
            )
        values[key.strip()] = value
    return values
