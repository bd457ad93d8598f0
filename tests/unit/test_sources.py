"""The release identity: it changes whenever what would be built changes.

.dockerignore is read and matched as moby/patternmatcher does; the cases below are its
own tests' (patternmatcher_test.go, ignorefile_test.go), on paths as a walk gives them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from swarm_deploy import config, sources

PATTERN_CASES = [
    ("**", "file", True), ("**", "dir/file", True), ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True), ("dir/**", "dir/dir2/file", True), ("**/dir", "dir", True),
    ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**file", "file", True),
    ("**file", "dir/file", True), ("**/file", "dir/file", True), ("**file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True), ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True), (".*", ".foo", True),
    (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False), ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False), ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True), ("*", "abc", True), ("a*", "ab/c", True), ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "path", "excluded"), PATTERN_CASES)
def test_a_pattern_matches_as_docker_matches_it(pattern: str, path: str, excluded: bool) -> None:
    assert sources.IgnoreMatcher([pattern]).excludes(path) is excluded


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        (["node_modules"], "node_modules/a/index.js", True),
    ],
)
def test_the_last_matching_pattern_decides(patterns: list[str], path: str, excluded: bool) -> None:
    assert sources.IgnoreMatcher(patterns).excludes(path) is excluded


def test_an_ignore_file_is_read_as_docker_reads_it() -> None:
    text = "\ufeff# comment\n  /node_modules/  \n\n!  keep.txt\ndist/../build\n#x\n"
    assert sources.read_ignore_file(text) == ["node_modules", "!keep.txt", "build"]


@pytest.fixture
def project(tmp_path: Path) -> config.Config:
    """A config of one image whose context is `app/`, outside any git work tree."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
    (tmp_path / "app" / "main.py").write_text("print('v1')\n")
    text = (
        "app: demo\ndomain: demo.example.com\nregistry: ghcr.io/acme\n"
        "images: {web: {context: app}}\nservices: {web: {image: web}}\n"
        "branches: [{match: main}]\n"
    )
    return config.parse(text, root=tmp_path)


def test_outside_git_the_release_follows_the_build_contexts(project: config.Config) -> None:
    """Was `dev` whatever the code: deploy then said "already at dev, nothing to do"."""
    first = sources.release_version(project)
    assert first.startswith("dev-")
    assert len(first) == len("dev-") + 12
    assert sources.release_version(project) == first
    (project.root / "app" / "main.py").write_text("print('v2')\n")
    second = sources.release_version(project)
    assert second != first
    (project.root / "app" / "main.py").write_text("print('v1')\n")
    assert sources.release_version(project) == first


def test_what_dockerignore_leaves_out_does_not_change_the_release(project: config.Config) -> None:
    app = project.root / "app"
    (app / ".dockerignore").write_text("notes/\n*.log\n!keep.log\n")
    before = sources.release_version(project)
    (app / "notes").mkdir()
    (app / "notes" / "todo.md").write_text("x")
    (app / "debug.log").write_text("x")
    assert sources.release_version(project) == before
    (app / "keep.log").write_text("x")
    assert sources.release_version(project) != before


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "app" / "new.py").write_text(""),  # a new file
        lambda root: os.chmod(root / "app" / "main.py", 0o700),  # COPY keeps the mode
        lambda root: (root / "app" / "Dockerfile").write_text("FROM scratch\n"),
        lambda root: os.symlink("main.py", root / "app" / "link.py"),
    ],
)
def test_each_kind_of_change_to_a_context_changes_the_release(
    project: config.Config, change: object
) -> None:
    before = sources.release_version(project)
    change(project.root)  # type: ignore[operator]
    assert sources.release_version(project) != before


def test_build_args_and_platform_are_part_of_what_is_built(project: config.Config) -> None:
    image = project.images["web"]
    variants = [
        replace(image, build_args=MappingProxyType({"BASE": "debian:12"})),
        replace(image, platform="linux/arm64"),
    ]
    hashes = {sources.image_inputs(project.root, v) for v in [image, *variants]}
    assert len(hashes) == 3


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def test_in_git_a_clean_commit_names_the_release(project: config.Config) -> None:
    root = project.root
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "x")
    sha = git(root, "rev-parse", "--short=12", "HEAD")
    assert sources.release_version(project) == sha


def test_a_dirty_tree_gives_a_release_that_follows_its_content(project: config.Config) -> None:
    """Was `<sha>-dirty` for every change: two different edits shared one release."""
    root = project.root
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "x")
    sha = git(root, "rev-parse", "--short=12", "HEAD")
    (root / "app" / "main.py").write_text("print('edit 1')\n")
    first = sources.release_version(project)
    (root / "app" / "main.py").write_text("print('edit 2')\n")
    second = sources.release_version(project)
    assert first.startswith(f"{sha}-dirty-")
    assert second.startswith(f"{sha}-dirty-")
    assert first != second


def test_a_file_git_does_not_track_in_a_context_is_not_named_by_the_commit(
    project: config.Config,
) -> None:
    """An untracked or git-ignored file in a context is built into the image too."""
    root = project.root
    (root / ".gitignore").write_text("app/dist/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "x")
    sha = git(root, "rev-parse", "--short=12", "HEAD")
    (root / "app" / "dist").mkdir()
    (root / "app" / "dist" / "bundle.js").write_text("built")
    assert sources.release_version(project).startswith(f"{sha}-dirty-")
    (root / "app" / ".dockerignore").write_text("dist\n")
    git(root, "add", "app/.dockerignore")
    git(root, "commit", "-qm", "ignore dist")
    assert sources.release_version(project) == git(root, "rev-parse", "--short=12", "HEAD")


def test_a_dockerfile_outside_the_context_counts_too(project: config.Config) -> None:
    """`docker build --file ../Dockerfile app`: the file is read, though not in the context."""
    (project.root / "web.Dockerfile").write_text("FROM scratch\n")
    image = replace(project.images["web"], dockerfile="../web.Dockerfile")
    before = sources.image_inputs(project.root, image)
    (project.root / "web.Dockerfile").write_text("FROM scratch\nCOPY . /srv\n")
    assert sources.image_inputs(project.root, image) != before
