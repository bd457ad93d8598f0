"""What a lock on the Swarm says, and how old it is: `Holder`, its content (who holds it,
shown to people, never used to judge), and `Seen`, one look at it on the manager's
clock, which judges whether its holder is gone (lock.py says why by heartbeat).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from swarm_deploy import facts


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its content says; `stale_after` is None in a lock taken by
    a swarm-deploy without heartbeats."""

    who: str
    action: str
    host: str = "?"
    pid: int = 0
    token: str = ""
    stale_after: float | None = None

    @classmethod
    def parse(cls, data: str) -> Holder | None:
        """The holder a lock's content names; None when it is not a swarm-deploy lock."""
        try:
            fields = json.loads(data)
            return cls(
                who=str(fields["who"]),
                action=str(fields["action"]),
                host=str(fields.get("host", "?")),
                pid=int(fields.get("pid", 0)),
                token=str(fields.get("token", "")),
                stale_after=(
                    float(fields["stale_after"]) if fields.get("stale_after") is not None else None
                ),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def content(self) -> bytes:
        return json.dumps(self.__dict__).encode()


@dataclass(frozen=True)
class Seen:
    """A lock as one look at the Swarm found it, every time on the manager's clock:
    `since` its creation, `beat` its holder's last heartbeat, `now` the look."""

    config_id: str
    holder: Holder | None
    since: datetime
    beat: datetime
    now: datetime

    @classmethod
    def of(cls, config: facts.Stored, now: datetime) -> Seen:
        return cls(
            config.id,
            Holder.parse(config.data.decode(errors="replace")),
            config.created_at,
            config.updated_at,
            now,
        )

    @property
    def age(self) -> float:
        return max(0.0, (self.now - self.since).total_seconds())

    @property
    def silence(self) -> float:
        """Seconds since the last heartbeat (never negative: the stamp may be the
        leader's, a little ahead of the manager that answered)."""
        return max(0.0, (self.now - self.beat).total_seconds())

    @property
    def gone(self) -> bool:
        """Its holder sent no heartbeat for its stale_after (lock.BEATS of them): it
        stopped, wherever it ran."""
        limit = self.holder.stale_after if self.holder is not None else None
        return limit is not None and self.silence >= limit

    @property
    def alive(self) -> bool:
        """Its holder's heartbeat is fresh."""
        return self.holder is not None and self.holder.stale_after is not None and not self.gone

    def describe(self) -> str:
        holder = self.holder
        if holder is None:
            return f"not a swarm-deploy lock, created {self.since:%Y-%m-%dT%H:%M:%SZ}"
        beat = (
            f"last heartbeat {self.silence:.0f}s ago"
            if holder.stale_after is not None
            else "no heartbeat (taken by a swarm-deploy that sends none)"
        )
        return (
            f"{holder.who} ({holder.action}, pid {holder.pid} on {holder.host}) since "
            f"{self.since:%Y-%m-%dT%H:%M:%SZ}, {self.age:.0f}s ago; {beat}"
        )
