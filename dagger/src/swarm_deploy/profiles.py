"""Profiles: `swarm-deploy.<profile>.yml` states only what differs from `swarm-deploy.yml`
next to it, and is merged onto it (docs/config.md, Profiles).

Mappings merge key by key, any other value (a list, a scalar) replaces the base's, and a
key set to nothing (`~`, or no value) removes the base's key. Errors name the file the bad
key came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from swarm_deploy._reader import describe, parse_yaml
from swarm_deploy.errors import ConfigError

BASE = "swarm-deploy.yml"
_PROFILE = re.compile(r"swarm-deploy\.[A-Za-z0-9_-]+\.ya?ml")


def base_of(path: PurePath) -> PurePath | None:
    """The config a profile is merged onto, or None when the file is a whole config."""
    return path.with_name(BASE) if _PROFILE.fullmatch(path.name) else None


@dataclass(frozen=True)
class Layer:
    """One file of a config: its name as shown in errors, and its text."""

    source: str
    text: str


def read_layers(path: Path) -> list[Layer]:
    """The files a config is read from: a profile's base first, then the profile."""
    base = base_of(path)
    layers = [] if base is None else [_read(Path(base), f"the base of the profile {path}")]
    return [*layers, _read(path, "the config")]


def _read(path: Path, what: str) -> Layer:
    try:
        return Layer(str(path), path.read_text())
    except OSError as exc:
        raise ConfigError(
            str(path), f"cannot read {what} ({exc.strerror}); pass --config PATH"
        ) from None


@dataclass
class Merged:
    """The data of every layer merged, and which file each key path came from."""

    data: Any
    base: str
    # key path -> the file that set it, for what a profile replaced, added or removed
    origins: dict[str, str] = field(default_factory=dict)
    # key paths of mappings that both files hold, merged key by key
    blended: set[str] = field(default_factory=set)
    profile: str | None = None

    def source_of(self, at: str) -> str:
        """The file (or files) a key path of the merged data came from."""
        if at in self.blended and self.profile is not None:
            return f"{self.base} + {self.profile}"
        parts = at.split("/")
        for end in range(len(parts), 0, -1):
            found = self.origins.get("/".join(parts[:end]))
            if found is not None:
                return found
        return self.base

    def locate(self, error: ConfigError) -> ConfigError:
        """The error with the file its key came from in front, when there are two files."""
        if self.profile is None:
            return error
        where = self.source_of(error.at)
        path = f"{where}: {error.path}" if error.path else where
        return ConfigError(path, error.message, at=error.at)


def merge_layers(layers: Sequence[Layer]) -> Merged:
    """The layers' YAML merged, each parsed on its own (its errors name its file)."""
    base, *profiles = layers
    merged = Merged(parse_yaml(base.text, base.source), base.source)
    for profile in profiles:
        data = parse_yaml(profile.text, profile.source)
        if data is None:
            continue  # an empty profile differs in nothing
        if not isinstance(merged.data, dict):
            break  # the base's own mistake is the one to show
        if not isinstance(data, dict):
            raise ConfigError(
                profile.source,
                f"should be a mapping of the keys that differ from {base.source}, "
                f"got {describe(data)}",
            )
        merged.profile = profile.source
        merged.data = _merge(merged.data, data, profile.source, "", merged)
    return merged


def _merge(base: Any, overlay: Any, source: str, path: str, merged: Merged) -> Any:
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        merged.origins[path] = source
        return overlay
    if path:
        merged.blended.add(path)
    result = dict(base)
    for key, value in overlay.items():
        child = f"{path}/{key}" if path else str(key)
        if value is None:
            merged.origins[child] = source
            result.pop(key, None)
        else:
            result[key] = _merge(base.get(key), value, source, child, merged)
    return result


def merged_data(path: Path | str) -> Any:
    """A config's data as the pipeline reads it: a profile merged onto its base."""
    return merge_layers(read_layers(Path(path))).data
