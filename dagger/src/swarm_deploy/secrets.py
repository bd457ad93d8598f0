"""Secret values: masked everywhere, readable only on purpose."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from swarm_deploy.errors import ConfigError, SecretSourceError, SecretValueError

MASK = "********"
# Swarm refuses secret data of 0 bytes or of MAX_SECRET_SIZE bytes and more
# (moby/swarmkit api/validation/secrets.go, ValidateSecretPayload); measured on the
# test bed's engines (20.10, 28.5): 511999 bytes are taken, 512000 refused.
MAX_SECRET_SIZE = 500 * 1024


def unusable(value: bytes) -> str | None:
    """Why Swarm (or the service reading it) cannot use this value, never showing it."""
    if not value:
        return "is empty"
    if not value.strip():
        # swarmkit once refused it ("secret data must contain non white space bytes"); the
        # test bed's engines (20.10, 28.5) take it, but no password or token is only whitespace
        return f"holds only whitespace ({len(value)} byte{'s' if len(value) > 1 else ''})"
    if len(value) >= MAX_SECRET_SIZE:
        return (
            f"is {len(value)} bytes; a Swarm secret must be smaller than "
            f"{MAX_SECRET_SIZE} bytes (500 KiB)"
        )
    return None


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
        """Read the value now; raises SecretSourceError saying how to provide it, or
        SecretValueError when the value is there but unusable (see `unusable`)."""
        if self.env is not None:
            env = os.environ if environ is None else environ
            if self.env not in env:
                raise SecretSourceError(
                    f"secret '{self.name}': environment variable {self.env} is not set; "
                    f"export it (for example `export {self.env}=...`) or change "
                    f"secrets/{self.name} in the config"
                )
            where = f"environment variable {self.env}"
            # a repository secret that is not set reaches a workflow as an empty value
            fix = f"give {self.env} the secret's value (in CI: set the repository secret)"
            raw = value = env[self.env].encode()
        else:
            assert self.file is not None
            path = Path(self.file).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise SecretSourceError(
                    f"secret '{self.name}': cannot read file {path} ({exc.strerror}); "
                    f"create it or change secrets/{self.name} in the config"
                ) from None
            value = raw.rstrip(b"\r\n")
            where, fix = f"file {path}", f"write the secret's value into {path}"
        # judged before the newline is dropped: a file of one line break "holds only whitespace"
        reason = unusable(raw if not raw.strip() else value)
        if reason is not None:
            raise SecretValueError(
                f"secret '{self.name}': {where} {reason}; {fix} "
                f"or change secrets/{self.name} in the config",
                reason,
            )
        return SecretValue(value)


def parse_env(text: str, where: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped; CRLF line ends are line
    ends; the value is every character after `=`, as the docker CLI's --env-file reads it.
    A quoted value is refused: Compose strips the quotes of its .env, which
    `swarm-deploy init` makes the secrets' file, so a secret would keep characters the
    app never had. An error names the line, never shows it."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(
                f"{where} line {number}", "should be KEY=VALUE (the line is not shown)"
            )
        if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
            raise ConfigError(
                f"{where} line {number}",
                f"{key.strip()}'s value is quoted: Compose would strip the quotes, this "
                "file's reader keeps every character after `=`; write the value without "
                "them (the line is not shown)",
            )
        values[key.strip()] = value
    return values
