"""The commands as use cases: each takes one typed request and returns a typed result.

The CLI and the Dagger module parse their options into a request and print the result;
everything between is here. A branch, its target (`--host`, else the config's `target`)
and its secrets are resolved once per command (`subject`), then handed down whole.

This module is the face; the commands live beside it, by subject: usecases_plan.py (the
subject, check, plan, render), usecases_deploy.py (deploy, rollback), usecases_target.py
(destroy, the stale branches, status, unlock), usecases_doctor.py (doctor).
"""

from __future__ import annotations

from swarm_deploy.usecases_deploy import (
    DeployRequest,
    Outcome,
    RollbackRequest,
    deploy,
    previous_release,
    published,
    rollback,
)
from swarm_deploy.usecases_doctor import Diagnosis, DoctorRequest, doctor
from swarm_deploy.usecases_plan import (
    LOCK_WAIT,
    Checked,
    CheckRequest,
    PlanRequest,
    Rendered,
    RenderRequest,
    check,
    deployed_at,
    plan,
    render,
    subject,
    target,
)
from swarm_deploy.usecases_target import (
    Destroyed,
    DestroyRequest,
    StaleRequest,
    Status,
    StatusRequest,
    UnlockRequest,
    destroy,
    stale_branches,
    status,
    unlock,
)

__all__ = [
    "LOCK_WAIT",
    "CheckRequest",
    "Checked",
    "DeployRequest",
    "DestroyRequest",
    "Destroyed",
    "Diagnosis",
    "DoctorRequest",
    "Outcome",
    "PlanRequest",
    "RenderRequest",
    "Rendered",
    "RollbackRequest",
    "StaleRequest",
    "Status",
    "StatusRequest",
    "UnlockRequest",
    "check",
    "deploy",
    "deployed_at",
    "destroy",
    "doctor",
    "plan",
    "previous_release",
    "published",
    "render",
    "rollback",
    "stale_branches",
    "status",
    "subject",
    "target",
    "unlock",
]
