"""Typed reads from parsed YAML, each error carrying its key path.

Inside `collecting()`, reading goes on after an error, as a compiler's does: `attempt`
records it and gives a fallback, an unknown key is recorded and skipped, and a part
whose own fields had errors is `Abandoned` (not checked further, so one mistake does
not show up again as another). Outside it, the first error is raised.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import yaml

from swarm_deploy.errors import ConfigError

T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


_found: ContextVar[list[ConfigError] | None] = ContextVar("config_errors", default=None)


class Abandoned(Exception):
    """A part of the config that is not read further; its errors are recorded already."""


@contextmanager
def collecting() -> Iterator[list[ConfigError]]:
    """Errors found while reading, in order, instead of only the first."""
    found: list[ConfigError] = []
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)


def report(error: ConfigError) -> None:
    """Record the error and go on when collecting; raise it otherwise."""
    found = _found.get()
    if found is None:
        raise error
    found.append(error)


def recorded() -> int:
    """How many errors were recorded so far (0 when not collecting)."""
    return len(_found.get() or [])


def settle(since: int) -> None:
    """Abandon the part being read if errors were recorded since `since`: its checks
    across fields would only repeat them."""
    if recorded() > since:
        raise Abandoned


def attempt(read: Callable[[], T], fallback: T) -> T:
    """`read()`; when collecting, an error in it is recorded and `fallback` given instead."""
    try:
        return read()
    except Abandoned:
        return fallback
    except ConfigError as exc:
        report(exc)
        return fallback


def describe(value: object) -> str:
    """How a bad value is shown in an error: scalars as written, containers by kind."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int) -> None:
        self.key = key
        self.line = line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a config must not."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source} line {mark.line + 1}" if mark else source
        raise ConfigError(where, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, f"not valid YAML: {exc}") from None
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{source} line {exc.line}",
            f"duplicate key '{exc.key}'; each key may appear once in a mapping",
        ) from None


class Node:
    """A value from the config and the key path that leads to it."""

    def __init__(self, value: Any, path: str = "") -> None:
        self.value = value
        self.path = path

    def fail(self, message: str) -> NoReturn:
        raise ConfigError(self.path, message)

    def _expect(self, what: str) -> NoReturn:
        self.fail(f"should be {what}, got {describe(self.value)}")

    def child(self, key: str, value: Any) -> Node:
        return Node(value, f"{self.path}/{key}" if self.path else key)

    def mapping(
        self, allowed: Sequence[str] | None = None, required: Sequence[str] = ()
    ) -> dict[str, Node]:
        """The entries of a mapping; unknown keys are errors when `allowed` is given."""
        if not isinstance(self.value, dict):
            self._expect("a mapping")
        entries: dict[str, Node] = {}
        for key, value in self.value.items():
            if not isinstance(key, str):
                report(ConfigError(self.path, f"keys should be names, got {describe(key)}"))
            elif allowed is not None and key not in allowed:
                where = f"{self.path}: " if self.path else ""
                report(
                    ConfigError(
                        "",
                        f"{where}unknown key '{key}'{suggest(key, allowed)}; "
                        f"valid keys here: {', '.join(allowed)}",
                        at=self.child(key, value).path,
                    )
                )
            else:
                entries[key] = self.child(key, value)
        missing = [key for key in required if key not in entries]
        for key in missing:
            report(ConfigError(self.child(key, None).path, "is required"))
        if missing:
            raise Abandoned  # reached only when collecting: the part cannot be read
        return entries

    def items(self) -> Iterator[Node]:
        if not isinstance(self.value, list):
            self._expect("a list")
        for index, value in enumerate(self.value):
            yield self.child(str(index), value)

    def text(self, pattern: str | None = None, hint: str = "") -> str:
        if not isinstance(self.value, str) or not self.value:
            self._expect("a non-empty string")
        if pattern is not None and re.fullmatch(pattern, self.value) is None:
            self.fail(f"{hint}, got {describe(self.value)}")
        return self.value

    def integer(self, low: int | None = None, high: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self._expect("an integer")
        if (low is not None and self.value < low) or (high is not None and self.value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.fail(f"should be an integer {bounds}, got {self.value}")
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self._expect("true or false")
        return self.value

    def names(self, pattern: str, hint: str) -> tuple[str, ...]:
        names = tuple(item.text(pattern, hint) for item in self.items())
        if not names:
            self.fail("should list at least one name")
        for name in names:
            if names.count(name) > 1:
                self.fail(f"'{name}' is listed twice")
        return names

    def string_map(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for key, node in self.mapping().items():
            if isinstance(node.value, bool) or not isinstance(node.value, str | int | float):
                node._expect("a string")
            result[key] = str(node.value)
        return result

    def duration(self) -> float:
        """Seconds, from a number or text like 500ms, 30s, 2m, 1m30s."""
        value = self.value
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        if isinstance(value, str) and value and _DURATION_PART.sub("", value) == "":
            return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
        return self.fail(f"should be a duration like 30s, 2m or 1m30s, got {describe(value)}")

    def reference(self, choices: Sequence[str], what: str) -> str:
        """A name that must be one of `choices` (defined elsewhere in the config)."""
        name = self.text()
        if name not in choices:
            known = ", ".join(sorted(choices)) or "none are defined"
            self.fail(f"unknown {what} '{name}'{suggest(name, choices)}; known: {known}")
        return name

    def references(self, choices: Sequence[str], what: str) -> tuple[str, ...]:
        return tuple(item.reference(choices, what) for item in self.items())
