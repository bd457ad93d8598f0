"""Where each template comes from: the package's templates/, or a file of the same path
next to the config, which overrides that one file.

An ejected file starts with a Jinja comment (it renders to nothing) that names the
package version and the sha256 of the packaged file it was copied from: the record
travels with the file through git, copies and renames, so `check` can tell whether the
packaged file changed since.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from pathlib import Path

from swarm_deploy import __version__
from swarm_deploy.errors import RenderError
from swarm_deploy.render import fingerprint

TEMPLATE_FILES = (
    "stacks/shared.yml",
    "stacks/edge.yml",
    "stacks/app.yml",
    "nginx/nginx.conf",
    "nginx/maintenance.html",
    "promtail/config.yml",
    "prometheus/prometheus.yml",
    "grafana/datasources.yml",
    "relay/haproxy.cfg",
    "prometheus/agent.yml",
)
FOLDERS = tuple(sorted({name.split("/")[0] for name in TEMPLATE_FILES}))
HASH_LEN = 12

_HEADER = re.compile(
    r"\{# swarm-deploy template (?P<name>\S+), ejected from swarm-deploy (?P<version>\S+) "
    r"\(packaged sha256:(?P<hash>[0-9a-f]+)\)[^#]*#\}\n"
)


def packaged(name: str) -> str:
    """The package's own copy of a template."""
    return files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def packaged_hash(name: str) -> str:
    return fingerprint(packaged(name))[:HASH_LEN]


def header(name: str) -> str:
    """The first line of an ejected file: what it was copied from."""
    return (
        f"{{# swarm-deploy template {name}, ejected from swarm-deploy {__version__} "
        f"(packaged sha256:{packaged_hash(name)}); `swarm-deploy check` warns once the "
        "packaged file differs from that #}\n"
    )


def ejected(name: str) -> str:
    """A packaged template as `templates eject` writes it."""
    return header(name) + packaged(name)


@dataclass(frozen=True)
class Templates:
    """What renders (each template's text) and the overrides found next to the config."""

    texts: dict[str, str]
    overrides: dict[str, str]


def resolve(found: Mapping[str, str]) -> Templates:
    """Each template from the file of its path next to the config (`found`: path -> text)
    where there is one, else from the package: the one place that decides."""
    texts = {name: found[name] if name in found else packaged(name) for name in TEMPLATE_FILES}
    return Templates(texts, {name: found[name] for name in TEMPLATE_FILES if name in found})


def load(root: Path) -> Templates:
    """The templates of a project directory: its overrides over the packaged ones."""
    found: dict[str, str] = {}
    for name in TEMPLATE_FILES:
        path = root / name
        if not path.exists():
            continue
        try:
            found[name] = path.read_text()
        except OSError as exc:
            raise RenderError(
                f"template {path} overrides the packaged {name} but cannot be read "
                f"({exc.strerror}); make it readable, or delete it to use the packaged one"
            ) from None
    return resolve(found)


def selected(name: str | None) -> list[str]:
    """The template files a NAME means: one file, a folder's files, or all (None)."""
    if name is None:
        return list(TEMPLATE_FILES)
    name = name.strip("/")
    chosen = [t for t in TEMPLATE_FILES if name in (t, t.split("/")[0])]
    if not chosen:
        raise ValueError(
            f"no template {name!r}; name a folder ({', '.join(FOLDERS)}) or a file "
            f"({', '.join(TEMPLATE_FILES)}), or nothing for all"
        )
    return chosen


def eject(root: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """Copy packaged templates under `root`, never over an existing file: (written, skipped)."""
    written, skipped = [], []
    for name in names:
        path = root / name
        if path.exists():
            skipped.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ejected(name))
        written.append(name)
    return written, skipped


class Age(Enum):
    """How an override stands to the packaged file it replaces."""

    SAME = "the same as the packaged file (delete it to follow the package's updates)"
    CURRENT = "ejected from the packaged file as it is"
    OLDER = "ejected from an older packaged file"
    UNRECORDED = "records no packaged file it was ejected from"


@dataclass(frozen=True)
class Override:
    name: str
    age: Age
    ejected_from: str  # "swarm-deploy 0.1.0 (packaged sha256:...)", or "" when unrecorded


def override(name: str, text: str) -> Override:
    """Whether an override is older than the packaged file it replaces, from its header."""
    match = _HEADER.match(text)
    body = text[match.end() :] if match else text
    if body == packaged(name):
        return Override(name, Age.SAME, "")
    if match is None:
        return Override(name, Age.UNRECORDED, "")
    source = f"swarm-deploy {match['version']} (packaged sha256:{match['hash']})"
    age = Age.CURRENT if match["hash"] == packaged_hash(name) else Age.OLDER
    return Override(name, age, source)


def warning(found: Override) -> str | None:
    """What `check` warns of an override that may miss changes of the packaged file."""
    see = f"see `swarm-deploy templates diff {found.name}`"
    if found.age is Age.OLDER:
        return (
            f"template {found.name} was ejected from {found.ejected_from}, and the packaged "
            f"file changed since (now sha256:{packaged_hash(found.name)}): {see}, bring "
            "over what you need, then update the sha256 in its first line"
        )
    if found.age is Age.UNRECORDED:
        return (
            f"template {found.name} overrides the packaged file and {Age.UNRECORDED.value} "
            f"(no `{{# swarm-deploy template ... #}}` first line), so whether it is older "
            f"cannot be told: {see}"
        )
    return None


def diff(name: str, text: str) -> str:
    """The packaged file against an override (its header left out), as `diff -u`."""
    match = _HEADER.match(text)
    body = text[match.end() :] if match else text
    return "".join(
        difflib.unified_diff(
            packaged(name).splitlines(keepends=True),
            body.splitlines(keepends=True),
            f"packaged/{name}",
            name,
        )
    )
