"""swarm-deploy as a Dagger module: thin functions over the swarm_deploy package.

    dagger call plan --branch develop
    dagger call deploy --branch develop --host ssh://deploy@vm1 \\
        --ssh-key file://~/.ssh/id_ed25519 --known-hosts file://~/.ssh/known_hosts \\
        --registry-user acme --registry-token env://GHCR_TOKEN

Images are built and published here, with the Dagger engine; everything that touches
the Swarm runs as `swarm-deploy` inside a deployer container (docker CLI, OpenSSH and
this package; built in dagger_build.py, run by deployer_container.py): the same command
the engine tests prove.
Every function checks all of its arguments before it builds, publishes or connects.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import dagger
from dagger import DefaultPath, Doc, Ignore, check, dag, field, function, object_type

from swarm_deploy import commands, dagger_build, pipeline, usecases
from swarm_deploy import deployer_container as container
from swarm_deploy.dagger_build import PYTHON_IMAGE, SOURCE_IGNORE, WORKDIR, never_cached
from swarm_deploy.destroy import refuse_protected
from swarm_deploy.errors import ConfigError
from swarm_deploy.plan import plan_lines
from swarm_deploy.secrets import parse_env
from swarm_deploy.usecases import LOCK_WAIT, PlanRequest, RenderRequest

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
        Doc(
            "The project: swarm-deploy.yml, the images' build contexts, and any template "
            "file next to the config that overrides the packaged one."
        ),
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

    @never_cached
    async def plan_on_target(
        self,
        branch: Branch,
        release: Release = "",
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
        json_output: Annotated[bool, Doc("Return the plan as JSON.")] = False,
    ) -> str:
        """The plan from what the target holds (`plan --read-target`): read, no lock taken."""
        release = await self._release(release)
        deployer, target = await self._on_target(host, ssh_key, ssh_auth_sock, known_hosts)
        args = ["plan", "--branch", branch, "--release", release, "--read-target"]
        ran = await self._exec(deployer, target, [*args, *(["--json"] if json_output else [])])
        # the plan's warnings are on stderr, as `plan` returns them after its lines
        return await ran.stdout() + ("" if json_output else await ran.stderr())

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
        return [
            dagger_build.image(self.source, self.config_path, cfg, name, release, platform)
            for name in cfg.images
        ]

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
            image = dagger_build.image(
                self.source, self.config_path, cfg, name, release, "", source_url
            )
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
        force: Annotated[
            bool,
            Doc(
                "Deploy even when this release is already live, and run the steps a version "
                "recorded on the target would skip (data jobs, shared stack, edge)."
            ),
        ] = False,
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
            access=dagger_build.access(ssh_key, ssh_auth_sock, known_hosts),
            registry_user=registry_user, has_token=registry_token is not None,
            environ=await self._app_environ(app_secrets),
        )  # fmt: skip
        images = await self._publish(registry_user, registry_token, release, branch, source_url)
        args = ["deploy", "--branch", branch, "--release", release]
        args += [part for image in images for part in ("--image", image)]
        args += dagger_build.common_args(app_secrets, lock_wait, actor)
        args += ["--force"] if force else []
        args += ["--update-shared"] if update_shared else []
        deployer = dagger_build.deployer(self.source, ssh_key, ssh_auth_sock, known_hosts,
                                         registry_user, registry_token, app_secrets)  # fmt: skip
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
            access=dagger_build.access(ssh_key, ssh_auth_sock, known_hosts),
            registry_user=registry_user, has_token=registry_token is not None,
            environ=await self._app_environ(app_secrets),
        )  # fmt: skip
        deployer = dagger_build.deployer(self.source, ssh_key, ssh_auth_sock, known_hosts,
                                         registry_user, registry_token, app_secrets)  # fmt: skip
        args = ["rollback", "--branch", branch]
        args += dagger_build.common_args(app_secrets, lock_wait, actor)
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
            project.config, host, dagger_build.access(ssh_key, ssh_auth_sock, known_hosts)
        )
        refuse_protected(project.config, branch, force)
        deployer = dagger_build.deployer(self.source, ssh_key, ssh_auth_sock, known_hosts)
        args = ["destroy", "--branch", branch, *(["--drop-data"] if drop_data else [])]
        args += ["--force"] if force else []
        args += dagger_build.common_args(None, lock_wait, actor)
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
        deployer, target = await self._on_target(host, ssh_key, ssh_auth_sock, known_hosts)
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
        deployer, target = await self._on_target(host, ssh_key, ssh_auth_sock, known_hosts)
        return await self._run(deployer, target, ["status", "--json"])

    @never_cached
    async def doctor(
        self,
        host: Host = "",
        ssh_key: SshKey = None,
        ssh_auth_sock: SshAgent = None,
        known_hosts: KnownHosts = None,
    ) -> str:
        """Check what a first deploy needs of the target, with each fix; fails on a blocker."""
        deployer, target = await self._on_target(host, ssh_key, ssh_auth_sock, known_hosts)
        return await self._run(deployer, target, ["doctor"])

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
        """The release asked for, or `dev-<hash>` of what would be built."""
        if release:
            return release
        cfg = (await self._project()).config
        return await dagger_build.dev_release(self.source, self.config_path, cfg)

    async def _on_target(
        self,
        host: str,
        ssh_key: dagger.Secret | None,
        ssh_auth_sock: dagger.Socket | None,
        known_hosts: dagger.Secret | None,
    ) -> tuple[dagger.Container, str]:
        """The deployer, without a registry login, and the target it reaches (checked)."""
        target = container.target(
            (await self._project()).config,
            host,
            dagger_build.access(ssh_key, ssh_auth_sock, known_hosts),
        )
        return dagger_build.deployer(self.source, ssh_key, ssh_auth_sock, known_hosts), target

    async def _project(self) -> pipeline.Project:
        """The config and its templates, read from the source directory."""
        return await dagger_build.project(self.source, self.config_path)

    async def _app_environ(self, app_secrets: dagger.Secret | None) -> dict[str, str]:
        """The KEY=VALUE lines of --app-secrets, read to check them before anything runs."""
        if app_secrets is None:
            return {}
        return parse_env(await app_secrets.plaintext(), "--app-secrets")

    async def _run(self, deployer: dagger.Container, target: str, args: list[str]) -> str:
        return await (await self._exec(deployer, target, args)).stdout()

    async def _exec(
        self, deployer: dagger.Container, target: str, args: list[str]
    ) -> dagger.Container:
        cfg = (await self._project()).config
        argv = container.argv(
            config_path=self.config_path,
            target=target,
            registry=commands.registry_host(cfg.registry),
            args=args,
        )
        # a deploy is an action, never a cached result
        return deployer.with_env_variable("SWARM_DEPLOY_AT", str(time.time())).with_exec(argv)
