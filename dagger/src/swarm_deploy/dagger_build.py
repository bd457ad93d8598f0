"""What the Dagger module reads from its source directory and builds with the engine:
the project, the release name, the images and the deployer container.

main.py holds the Dagger object and its functions; these are the helpers they call, each
taking the source directory (and the config's path in it) it works on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, TypeVar, cast

import dagger
from dagger import dag, function

from swarm_deploy import config, pipeline, profiles, sources, template_files
from swarm_deploy import deployer_container as container

SOURCE_IGNORE = [
    ".git",
    ".venv",
    "**/__pycache__",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/.pytest_cache",
    ".hypothesis",
    ".swarm-deploy",
    "dagger/sdk",
]
PYTHON_IMAGE = container.BASE_IMAGE
WORKDIR = container.WORKDIR

F = TypeVar("F", bound=Callable[..., Any])


def never_cached(func: F) -> F:
    """`@function(cache="never")`: an action, never a cached result. (The SDK accepts
    `cache` but its typed overloads leave it out.)"""
    decorate = function(cache="never")  # type: ignore[call-overload]
    return cast(F, decorate(func))


async def project(source: dagger.Directory, config_path: str) -> pipeline.Project:
    """The config, and the templates next to it that override the packaged ones."""
    path = PurePosixPath(config_path)
    base = profiles.base_of(path)
    layers = [config_path] if base is None else [str(base), config_path]
    texts = [profiles.Layer(name, await source.file(name).contents()) for name in layers]
    root = path.parent
    found = {
        name: await source.file(str(root / name)).contents()
        for name in template_files.TEMPLATE_FILES
        if await source.exists(str(root / name))
    }
    return pipeline.Project.of(config.parse_layers(texts), template_files.resolve(found))


def _context(source: dagger.Directory, config_path: str, image: config.Image) -> dagger.Directory:
    """An image's build context: its path is relative to the config's directory."""
    return source.directory(str(PurePosixPath(config_path).parent / image.context))


async def dev_release(source: dagger.Directory, config_path: str, cfg: config.Config) -> str:
    """A release the build contexts' content names (the source holds no .git):
    `dev-<hash>`, which changes whenever what would be built changes."""
    digest = hashlib.sha256()
    for image in sorted(cfg.images.values(), key=lambda image: image.name):
        content = await _context(source, config_path, image).digest()
        digest.update(f"{sources.image_settings(image)}\0{content}\n".encode())
    return f"dev-{digest.hexdigest()[: sources.HASH_LEN]}"


def image(
    source: dagger.Directory,
    config_path: str,
    cfg: config.Config,
    name: str,
    release: str,
    platform: str,
    source_url: str = "",
) -> dagger.Container:
    """One image, built by the engine: the platform is always explicit (amd64 from arm64)."""
    settings = cfg.images[name]
    built = _context(source, config_path, settings).docker_build(
        platform=dagger.Platform(platform or settings.platform),
        dockerfile=settings.dockerfile,
        build_args=[dagger.BuildArg(name=k, value=v) for k, v in settings.build_args.items()],
    )
    built = built.with_label("org.opencontainers.image.revision", release)
    if source_url:
        built = built.with_label("org.opencontainers.image.source", source_url)
    return built


def access(
    ssh_key: dagger.Secret | None,
    ssh_auth_sock: dagger.Socket | None,
    known_hosts: dagger.Secret | None,
) -> container.Access:
    """What the call gave the deployer to reach its target with."""
    return container.Access(ssh_key is not None, ssh_auth_sock is not None, known_hosts is not None)


def common_args(app_secrets: dagger.Secret | None, lock_wait: int, actor: str) -> list[str]:
    """What every command the deployer runs passes on: secrets, lock, who."""
    args = ["--secrets-env-file", container.APP_SECRETS_FILE] if app_secrets else []
    args += ["--lock-wait", str(lock_wait)]
    return [*args, "--actor", actor or container.UNNAMED_ACTOR]


def deployer(
    source: dagger.Directory,
    ssh_key: dagger.Secret | None,
    ssh_auth_sock: dagger.Socket | None,
    known_hosts: dagger.Secret | None,
    registry_user: str = "",
    registry_token: dagger.Secret | None = None,
    app_secrets: dagger.Secret | None = None,
) -> dagger.Container:
    """Python + OpenSSH + the static docker CLI + swarm-deploy, with the project;
    secrets are mounted by ID, and what is derived from them lives on a tmpfs."""
    docker_cli = dag.container().from_(container.DOCKER_CLI_IMAGE).file(container.DOCKER_CLI)
    built = (
        dag.container()
        .from_(container.BASE_IMAGE)
        .with_exec(["apt-get", "update", "-qq"])
        .with_exec(["apt-get", "install", "-qq", "-y", "--no-install-recommends",
                    *container.APT_PACKAGES])
        .with_file(container.DOCKER_CLI, docker_cli)
        # this module's own source, not the project's: a project that calls the module from
        # another repository (`dagger -m`, `dagger install`) has no swarm-deploy in it
        .with_directory(container.PACKAGE_DIR, dag.current_module().source(), exclude=["sdk"])
        .with_exec([
            "pip", "install", "--quiet", "--no-cache-dir",
            "-c", f"{container.PACKAGE_DIR}/constraints.txt", container.PACKAGE_DIR,
        ])
        .with_directory(WORKDIR, source)
        .with_workdir(WORKDIR)
        .with_new_file(container.SSH_CONFIG, container.SSH_CLIENT_CONFIG)
        .with_mounted_temp(container.PRIVATE_DIR)
        .with_env_variable("DOCKER_CONFIG", container.DOCKER_CONFIG)
    )  # fmt: skip
    if known_hosts is not None:
        built = built.with_mounted_secret(container.KNOWN_HOSTS, known_hosts)
    if ssh_key is not None:
        built = built.with_mounted_secret(container.SSH_KEY_MOUNT, ssh_key)
    if ssh_auth_sock is not None:
        built = built.with_unix_socket(container.SSH_AGENT_SOCK, ssh_auth_sock)
        built = built.with_env_variable("SSH_AUTH_SOCK", container.SSH_AGENT_SOCK)
    if registry_token is not None:
        built = built.with_secret_variable(container.TOKEN_VARIABLE, registry_token)
        built = built.with_env_variable(container.USER_VARIABLE, registry_user)
    if app_secrets is not None:
        built = built.with_mounted_secret(container.APP_SECRETS_FILE, app_secrets)
    return built
