"""What a build would read, as one content hash, and the release version that names it.

A release must change whenever what would be built changes, so that a deploy's
"nothing to do" is only ever true. Git names a release by its commit when the commit
holds everything the builds read; otherwise (uncommitted changes, files in a build
context that git does not track, no git at all) the version carries a hash of the build
inputs: each image's context as docker sends it (honouring .dockerignore), its
Dockerfile, platform and build args.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from swarm_deploy.config import Config, Image

HASH_LEN = 12


def _clean(pattern: str) -> str:
    """Go's filepath.Clean on a slash path ("" is ".")."""
    cleaned = posixpath.normpath(pattern) if pattern else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_ignore_file(text: str) -> list[str]:
    """The patterns of a .dockerignore, as moby/patternmatcher ignorefile.ReadAll reads
    them: a BOM dropped, `#` lines skipped, each line trimmed and cleaned, a leading `/`
    removed, `!` kept in front."""
    patterns = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass(frozen=True)
class _Pattern:
    """One pattern, matched as moby/patternmatcher's Pattern.match matches it."""

    text: str
    exclusion: bool
    kind: str  # exact, prefix, suffix or regexp
    regexp: re.Pattern[str] | None

    @classmethod
    def compile(cls, pattern: str) -> _Pattern:
        exclusion = pattern.startswith("!")
        text = pattern[1:] if exclusion else pattern
        out, kind, i, position = "^", "exact", 0, 0
        while position < len(text):
            char = text[position]
            position += 1
            if char == "*":
                if text[position : position + 1] == "*":
                    position += 1
                    if text[position : position + 1] == "/":
                        position += 1
                    if position >= len(text):
                        # "**" at the end, as .gitignore: anything below
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            out, kind = out + ".*", "regexp"
                    else:
                        out, kind = out + "(.*/)?", "regexp"
                    if i == 0:
                        kind = "suffix"
                else:
                    out, kind = out + "[^/]*", "regexp"
            elif char == "?":
                out, kind = out + "[^/]", "regexp"
            elif char in ".+()|{}$":
                out += "\\" + char
            elif char == "\\":
                if position < len(text):
                    out, kind = out + "\\" + text[position], "regexp"
                    position += 1
                else:
                    out += "\\\\"
            elif char in "[]":
                out, kind = out + char, "regexp"
            else:
                out += char
            i += 1
        regexp = re.compile(out + "$") if kind == "regexp" else None
        return cls(text, exclusion, kind, regexp)

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regexp is not None
        return self.regexp.match(path) is not None


class IgnoreMatcher:
    """Whether docker leaves a path of the build context out (MatchesOrParentMatches):
    the last pattern that matches the path or one of its parent directories decides."""

    def __init__(self, patterns: Sequence[str]) -> None:
        cleaned = (_clean(p.strip()) for p in patterns if p.strip())
        self.patterns = [_Pattern.compile(p) for p in cleaned]

    def excludes(self, path: str) -> bool:
        matched = False
        parents = path.split("/")[:-1]
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path) or any(
                pattern.match("/".join(parents[: i + 1])) for i in range(len(parents))
            )
            if match:
                matched = not pattern.exclusion
        return matched


def _context_entries(context: Path, dockerfile: str) -> Iterator[str]:
    """One line per path docker would send: its path, kind, mode and content hash."""
    matchers = [
        IgnoreMatcher(read_ignore_file(ignore.read_text(errors="replace")))
        for ignore in (context / ".dockerignore", context / f"{dockerfile}.dockerignore")
        if ignore.is_file()
    ]
    # the builder reads the Dockerfile and ignore files whatever the patterns say
    always = {dockerfile, ".dockerignore", f"{dockerfile}.dockerignore"}
    for directory, dirs, files in os.walk(context):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = Path(directory, name)
            relative = path.relative_to(context).as_posix()
            # left out only when every ignore file a builder might read leaves it out
            if matchers and relative not in always and all(m.excludes(relative) for m in matchers):
                continue
            info = path.lstat()
            mode = f"{stat.S_IMODE(info.st_mode):o}"
            if stat.S_ISLNK(info.st_mode):
                yield f"{relative}\0link\0{mode}\0{os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                yield f"{relative}\0dir\0{mode}\0"
            elif stat.S_ISREG(info.st_mode):
                yield f"{relative}\0file\0{mode}\0{_file_digest(path)}"


def _file_digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def image_settings(image: Image) -> str:
    """What of an image's build comes from the config: name, platform, Dockerfile, args."""
    return repr([image.name, image.platform, image.dockerfile, *sorted(image.build_args.items())])


def image_inputs(root: Path, image: Image) -> str:
    """sha256 of what building one image reads: its context, Dockerfile, platform, args."""
    context = root / image.context
    digest = hashlib.sha256()
    digest.update(image_settings(image).encode())
    # `--file` may name a Dockerfile outside the context: its content counts all the same
    dockerfile = context / image.dockerfile
    digest.update(_file_digest(dockerfile).encode() if dockerfile.is_file() else b"no file")
    if context.is_dir():
        for entry in _context_entries(context, image.dockerfile):
            digest.update(entry.encode("utf-8", "surrogateescape") + b"\n")
    else:
        digest.update(b"\0missing context")
    return digest.hexdigest()


def build_inputs(config: Config) -> str:
    """sha256 of what building every image of the config reads."""
    digest = hashlib.sha256()
    for name, image in sorted(config.images.items()):
        digest.update(f"{name}\0{image_inputs(config.root, image)}\n".encode())
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def _git_holds_the_builds(root: Path, config: Config) -> bool:
    """No change to a tracked file, and every file a build reads (its context as sent,
    its Dockerfile) is tracked."""
    if _git(root, "status", "--porcelain", "--untracked-files=no") != "":
        return False
    top = _git(root, "rev-parse", "--show-toplevel")
    for image in config.images.values():
        context = (root / image.context).resolve()
        dockerfile = (context / image.dockerfile).resolve()
        tracked = _git(root, "ls-files", "-z", "--full-name", "--", str(context), str(dockerfile))
        if tracked is None or top is None:
            return False  # a context outside the work tree
        tracked_paths = {Path(top.strip(), name) for name in tracked.split("\0") if name}
        entries = [entry.split("\0") for entry in _context_entries(context, image.dockerfile)]
        read = [context / path for path, kind, *_ in entries if kind != "dir"]
        if any(path not in tracked_paths for path in [*read, dockerfile]):
            return False
    return True


def release_version(config: Config, inputs: str | None = None) -> str:
    """The default release: the commit (12 hex) when it holds everything the builds read;
    `<commit>-dirty-<inputs>` when it does not; `dev-<inputs>` outside git. `inputs`:
    build_inputs(config), when the caller has it already."""
    root = config.root
    short = (inputs or build_inputs(config))[:HASH_LEN]
    sha = (_git(root, "rev-parse", "--short=12", "HEAD") or "").strip()
    if not sha:
        return f"dev-{short}"
    return sha if _git_holds_the_builds(root, config) else f"{sha}-dirty-{short}"
