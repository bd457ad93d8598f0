"""swarm-deploy as a Dagger module: thin functions over the swarm_deploy package.

    dagger call plan --branch develop
    dagger call deploy --branch develop --host ssh://deploy@vm1 \\
        --ssh-key file://~/.ssh/id_ed25519 --known-hosts file://~/.ssh/known_hosts \\
        --registry-user acme --registry-token env://GHCR_TOKEN

Images are built and published here, with the Dagger engine; everything that touches
the Swarm runs as `swarm-deploy` inside a deployer container (docker CLI, OpenSSH and
this package, see deployer_container.py): the same command the engine tests prove.
Every function checks all of its arguments before it builds, publishes or connects.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Annotated, Any, TypeVar, cast

import dagger
from dagger import DefaultPath, Doc, Ignore, check, dag, field, function, object_type

from swarm_deploy import commands, config, pipeline, profiles, sources, usecases
from swarm_deploy import deployer_container as container
from swarm_deploy.destroy import refuse_protected
from swarm_deploy.errors import ConfigError
from swarm_deploy.plan import plan_lines
from swarm_deploy.render import TEMPLATE_FILES
from swarm_deploy.secrets import parse_env
from swarm_deploy.usecases import LOCK_WAIT, PlanRequest, RenderRequest

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


Branch = Annotated[str, Doc("The git branch, e.g. develop or feature/login.")]
Release = Annotated[
    str, Doc("Image tag of the release, e.g. the git commit; default: dev-<hash of the contexts>.")
]
Host = Annotated[
    str, Doc("ssh://user@host[:port] (plan also takes local); default: target in the config.")
]
SshKey = Annotated[
    dagger.Secret | None, Doc("Private key for ssh:// targets, e.g. file://~/.ssh/id_ed25519.")
]
SshAgent = Annotated[
    dagger.Socket | None, Doc("An ssh-agent socket instead of a key, e.g. $SSH_AUTH_SOCK.")
]
KnownHosts = Annotated[
    dagger.Secret | None, Doc("known_hosts with the target's host key: required, always checked.")
]
RegistryUser = Annotated[str, Doc("Registry user, e.g. the GitHub owner for ghcr.io.")]
RegistryToken = Annotated[
    dagger.Secret | None,
    Doc("Registry token; the Swarm keeps it for pulls, so use a long-lived one."),
]
AppSecrets = Annotated[
    dagger.Secret | None, Doc("KEY=VALUE lines for the config's env: secret sources.")
]
LockWait = Annotated[
    int, Doc("The longest to wait for each lock another command holds (seconds; 0: refuse).")
]
UpdateShared = Annotated[
    bool,
    Doc("Let this deploy change the shared stack for every branch (its rule is not shared)."),
]
Actor = Annotated[
    str,
    Doc(
        "Who runs this, recorded on the Swarm and in the lock, e.g. "
        '"$GITHUB_ACTOR ($RUN_URL)"; default: unknown (dagger call without --actor).'
    ),
]


@object_type
class SwarmDeploy:
    """Blue/green deploys of a multi-service app to Docker Swarm, one stack per git branch."""

    source: Annotated[
        dagger.Directory,
        Doc("The project: swarm-deploy.yml, its templates and the images' build contexts."),
        DefaultPath("/"),
        Ignore(SOURCE_IGNORE),
    ]
    config_path: Annotated[str, Doc("Path of the config inside the source directory.")] = field(
        default="swarm-deploy.yml"
    )

    @function
    async def plan(
        self,
        branch: Branch,
        release: Release = "",
        host: Host = "",
        json_output: Annotated[bool, Doc("Return the plan as JSON.")] = False,
    ) -> str:
        """Show the steps a deploy of the branch would run; changes nothing."""
        return await self._plan(branch, await self._release(release), host, json_output)

    async def _plan(self, branch: str, release: str, host: str, json_output: bool = False) -> str:
        request = PlanRequest(await self._project(), branch, release, host or None, environ={})
        the_plan = usecases.plan(request)
        if json_output:
            return json.dumps(the_plan.to_json(), indent=2)
        lines = [text for _, text in plan_lines(the_plan)]
        lines += [f"warning: {warning}" for warning in the_plan.warnings]
        return "\n".join(lines) + "\n"

    @function
    async def render(self, branch: Branch, release: Release = "") -> dagger.Directory:
        """Render the branch's stacks, nginx, Promtail, Prometheus and Grafana files."""
        release = await self._release(release)
        request = RenderRequest(await self._project(), branch, release, environ={})
        out = dag.directory()
        for path, content in usecases.render(request).files.items():
            out = out.with_new_file(path, content)
        return out

    @function
    async def build(
        self,
        release: Release = "",
        platform: Annotated[str, Doc("Override every image's platform, e.g. linux/arm64.")] = "",
    ) -> list[dagger.Container]:
        """Build every image of the config, for its platform (linux/amd64 unless set)."""
        release = await self._release(release)
        cfg = (await self._project()).config
        return [self._image(cfg, name, release, platform) for name in cfg.images]

    @never_cached
    async def publish(
        self,
        registry_user: RegistryUser,
        registry_token: RegistryToken,
        release: Release = "",
        branch: Annotated[str, Doc("Also tag the images with this branch's slug.")] = "",
        source_url: Annotated[str, Doc("Repository URL, for GHCR to link the packages.")] = "",
    ) -> list[str]:
        """Push every image tagged with the release (and branch slug); returns NAME=digest refs."""
        release = await self._release(release)
        return await self._publish(registry_user, registry_token, release, branch, source_url)

    async def _publish(
        self,
        registry_user: str,
        registry_token: dagger.Secret | None,
        release: str,
        branch: str,
        source_url: str,
    ) -> list[str]:
        cfg = (await self._project()).config
        pipeline.release(cfg, release)
        container.check_registry_auth(registry_user, registry_token is not None)
        slug = cfg.names(branch).slug if branch else None
        published = []
        for name in cfg.images:
            image = self._image(cfg, name, release, "", source_url)
            if registry_token is not None:
                host = commands.registry_host(cfg.registry)
                image = image.with_registry_auth(host, registry_user, registry_token)
            repository = cfg.image_repository(name)
            ref = await image.publish(f"{repository}:{release}")
            if slug is not None:
                await image.publish(f"{repository}:{slug}")
            published.append(f"{name}={commands.pin(ref)}")
        return published

    @never_cached
    async def deploy(
        self,
        branch: Branch,
        release: Release = "",
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
        registry_user: RegistryUser = "",
        registry_token: RegistryToken = None,
        app_secrets: AppSecrets = None,
        source_url: Annotated[str, Doc("Repository URL, for GHCR to link the packages.")] = "",
        lock_wait: LockWait = LOCK_WAIT,
        force: Annotated[bool, Doc("Deploy even when this release is already live.")] = False,
        update_shared: UpdateShared = False,
        actor: Actor = "",
        dry_run: Annotated[bool, Doc("Return the plan instead of deploying.")] = False,
    ) -> str:
        """Build, publish, then deploy the branch blue/green from a deployer container."""
        release = await self._release(release)
        if dry_run:
            return await self._plan(branch, release, host)
        target = container.check_deploy(
            await self._project(), branch, release, host=host,
            access=self._access(ssh_key, ssh_auth_sock, known_hosts),
            registry_user=registry_user, has_token=registry_token is not None,
            environ=await self._app_environ(app_secrets),
        )  # fmt: skip
        images = await self._publish(registry_user, registry_token, release, branch, source_url)
        args = ["deploy", "--branch", branch, "--release", release]
        args += [part for image in images for part in ("--image", image)]
        args += self._common_args(app_secrets, lock_wait, actor)
        args += ["--force"] if force else []
        args += ["--update-shared"] if update_shared else []
        deployer = self._deployer(ssh_key, ssh_auth_sock, known_hosts, registry_user,
                                  registry_token, app_secrets)  # fmt: skip
        return await self._run(deployer, target, args)

    @never_cached
    async def rollback(
        self,
        branch: Branch,
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
        registry_user: RegistryUser = "",
        registry_token: RegistryToken = None,
        app_secrets: AppSecrets = None,
        lock_wait: LockWait = LOCK_WAIT,
        update_shared: UpdateShared = False,
        actor: Actor = "",
    ) -> str:
        """Put the release before the live one back, through the same gate and switch."""
        target = container.check_deploy(
            await self._project(), branch, None, host=host,
            access=self._access(ssh_key, ssh_auth_sock, known_hosts),
            registry_user=registry_user, has_token=registry_token is not None,
            environ=await self._app_environ(app_secrets),
        )  # fmt: skip
        deployer = self._deployer(ssh_key, ssh_auth_sock, known_hosts, registry_user,
                                  registry_token, app_secrets)  # fmt: skip
        args = ["rollback", "--branch", branch]
        args += self._common_args(app_secrets, lock_wait, actor)
        args += ["--update-shared"] if update_shared else []
        return await self._run(deployer, target, args)

    @never_cached
    async def destroy(
        self,
        branch: Branch,
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
        drop_data: Annotated[bool, Doc("Also drop the branch's databases and Redis keys.")] = False,
        force: Annotated[bool, Doc("Also remove a protected branch.")] = False,
        lock_wait: LockWait = LOCK_WAIT,
        actor: Actor = "",
    ) -> str:
        """Remove what the target holds of a branch; other branches keep running."""
        project = await self._project()
        target = container.target(
            project.config, host, self._access(ssh_key, ssh_auth_sock, known_hosts)
        )
        refuse_protected(project.config, branch, force)
        deployer = self._deployer(ssh_key, ssh_auth_sock, known_hosts)
        args = ["destroy", "--branch", branch, *(["--drop-data"] if drop_data else [])]
        args += ["--force"] if force else []
        args += self._common_args(None, lock_wait, actor)
        return await self._run(deployer, target, args)

    @never_cached
    async def unlock(
        self,
        branch: Annotated[str, Doc("Free the lock of this branch (empty: see shared).")] = "",
        shared: Annotated[bool, Doc("Free the lock of the shared stack instead.")] = False,
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
    ) -> str:
        """Free a lock whose holder is gone; a lock whose holder is alive stays."""
        if (branch == "") == (not shared):
            raise ConfigError("unlock", "give exactly one of --branch B or --shared")
        target = container.target(
            (await self._project()).config, host, self._access(ssh_key, ssh_auth_sock, known_hosts)
        )
        deployer = self._deployer(ssh_key, ssh_auth_sock, known_hosts)
        which = ["--shared"] if shared else ["--branch", branch]
        return await self._run(deployer, target, ["unlock", *which])

    @never_cached
    async def status(
        self,
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
    ) -> str:
        """Every branch on the target, as JSON: live colour, release, age, task health."""
        target = container.target(
            (await self._project()).config, host, self._access(ssh_key, ssh_auth_sock, known_hosts)
        )
        deployer = self._deployer(ssh_key, ssh_auth_sock, known_hosts)
        return await self._run(deployer, target, ["status", "--json"])

    @function
    @check
    async def unit_tests(self) -> str:
        """Run the project's pure and offline-Dagger tests in a Python container."""
        return await (
            dag.container()
            .from_(PYTHON_IMAGE)
            .with_directory(WORKDIR, self.source)
            .with_workdir(WORKDIR)
            .with_exec(["apt-get", "update", "-qq"])
            .with_exec(["apt-get", "install", "-qq", "-y", "--no-install-recommends", "git"])
            .with_exec(["pip", "install", "--quiet", "pip==26.3"])  # the first with --group: 25.1
            .with_exec([
                "pip", "install", "--quiet", "-c", "dagger/constraints.txt", "./dagger",
                "--group", "dagger/pyproject.toml:dev",
            ])
            .with_exec(["python", "-m", "pytest", "-q", "tests/unit", "tests/dagger"])
            .stdout()
        )  # fmt: skip

    async def _release(self, release: str) -> str:
        """The release asked for, or one the build contexts' content names (the source holds
        no .git): `dev-<hash>`, which changes whenever what would be built changes."""
        if release:
            return release
        cfg = (await self._project()).config
        digest = hashlib.sha256()
        for image in sorted(cfg.images.values(), key=lambda image: image.name):
            context = PurePosixPath(self.config_path).parent / image.context
            content = await self.source.directory(str(context)).digest()
            digest.update(f"{sources.image_settings(image)}\0{content}\n".encode())
        return f"dev-{digest.hexdigest()[: sources.HASH_LEN]}"

    async def _project(self) -> pipeline.Project:
        """The config and its templates, read from the source directory."""
        path = PurePosixPath(self.config_path)
        base = profiles.base_of(path)
        layers = [self.config_path] if base is None else [str(base), self.config_path]
        texts = [profiles.Layer(name, await self.source.file(name).contents()) for name in layers]
        root = path.parent
        templates = {
            name: await self.source.file(str(root / name)).contents() for name in TEMPLATE_FILES
        }
        return pipeline.Project(config.parse_layers(texts), templates)

    def _image(
        self, cfg: config.Config, name: str, release: str, platform: str, source_url: str = ""
    ) -> dagger.Container:
        """One image, built by the engine: the platform is always explicit (amd64 from arm64)."""
        image = cfg.images[name]
        context = PurePosixPath(self.config_path).parent / image.context
        built = self.source.directory(str(context)).docker_build(
            platform=dagger.Platform(platform or image.platform),
            dockerfile=image.dockerfile,
            build_args=[dagger.BuildArg(name=k, value=v) for k, v in image.build_args.items()],
        )
        built = built.with_label("org.opencontainers.image.revision", release)
        if source_url:
            built = built.with_label("org.opencontainers.image.source", source_url)
        return built

    @staticmethod
    def _access(
        ssh_key: dagger.Secret | None,
        ssh_auth_sock: dagger.Socket | None,
        known_hosts: dagger.Secret | None,
    ) -> container.Access:
        """What the call gave the deployer to reach its target with."""
        return container.Access(
            ssh_key is not None, ssh_auth_sock is not None, known_hosts is not None
        )

    async def _app_environ(self, app_secrets: dagger.Secret | None) -> dict[str, str]:
        """The KEY=VALUE lines of --app-secrets, read to check them before anything runs."""
        if app_secrets is None:
            return {}
        return parse_env(await app_secrets.plaintext(), "--app-secrets")

    @staticmethod
    def _common_args(app_secrets: dagger.Secret | None, lock_wait: int, actor: str) -> list[str]:
        """What every command the deployer runs passes on: secrets, lock, who."""
        args = ["--secrets-env-file", container.APP_SECRETS_FILE] if app_secrets else []
        args += ["--lock-wait", str(lock_wait)]
        return [*args, "--actor", actor or container.UNNAMED_ACTOR]

    def _deployer(
        self,
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
        deployer = (
            dag.container()
            .from_(container.BASE_IMAGE)
            .with_exec(["apt-get", "update", "-qq"])
            .with_exec(["apt-get", "install", "-qq", "-y", "--no-install-recommends",
                        *container.APT_PACKAGES])
            .with_file(container.DOCKER_CLI, docker_cli)
            .with_directory(container.PACKAGE_DIR, self.source.directory("dagger"),
                            exclude=["sdk"])
            .with_exec([
                "pip", "install", "--quiet", "--no-cache-dir",
                "-c", f"{container.PACKAGE_DIR}/constraints.txt", container.PACKAGE_DIR,
            ])
            .with_directory(WORKDIR, self.source)
            .with_workdir(WORKDIR)
            .with_new_file(container.SSH_CONFIG, container.SSH_CLIENT_CONFIG)
            .with_mounted_temp(container.PRIVATE_DIR)
            .with_env_variable("DOCKER_CONFIG", container.DOCKER_CONFIG)
        )  # fmt: skip
        if known_hosts is not None:
            deployer = deployer.with_mounted_secret(container.KNOWN_HOSTS, known_hosts)
        if ssh_key is not None:
            deployer = deployer.with_mounted_secret(container.SSH_KEY_MOUNT, ssh_key)
        if ssh_auth_sock is not None:
            deployer = deployer.with_unix_socket(container.SSH_AGENT_SOCK, ssh_auth_sock)
            deployer = deployer.with_env_variable("SSH_AUTH_SOCK", container.SSH_AGENT_SOCK)
        if registry_token is not None:
            deployer = deployer.with_secret_variable(container.TOKEN_VARIABLE, registry_token)
            deployer = deployer.with_env_variable(container.USER_VARIABLE, registry_user)
        if app_secrets is not None:
            deployer = deployer.with_mounted_secret(container.APP_SECRETS_FILE, app_secrets)
        return deployer

    async def _run(self, deployer: dagger.Container, target: str, args: list[str]) -> str:
        cfg = (await self._project()).config
        argv = container.argv(
            config_path=self.config_path,
            target=target,
            registry=commands.registry_host(cfg.registry),
            args=args,
        )
        # a deploy is an action, never a cached result
        return (
            await deployer.with_env_variable("SWARM_DEPLOY_AT", str(time.time()))
            .with_exec(argv)
            .stdout()
        )
