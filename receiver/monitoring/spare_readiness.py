"""Whether each reserved spare could take instances now: found before the night it is needed.

A spare is kept disabled in Nova (nothing else lands there) but its nova-compute must run: a
spare whose nova-compute is down, forced down, or that Nova does not know at all cannot
receive an evacuation. The pre-flight finds that out during a recovery (and plans around
it); this check finds it out beforehand, so the free-spare gauge, its alert and
`lazarus segment show` do not count a spare that would fail.

One listing of Nova's nova-compute services per round, run by the BMC prober (one round per
interval, cluster-wide). The verdicts live in Redis (``P`` = settings.key_prefix)::

    P:spares:readiness   JSON {"checked_at": ISO, "unready": {spare: why}} (expires after max_age_s)

No verdict (never checked, expired, Nova unreachable) counts as ready: unknown is not broken,
and the recovery's own pre-flight still checks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import redis

from receiver.adapters.redis_client import translate_errors
from receiver.domain.model import ComputeService
from receiver.ports import Compute
from receiver.workflow.retry import retry_transient

log = logging.getLogger(__name__)


def why_unready(spare: str, service: ComputeService | None) -> str | None:
    """Why `spare` could not take instances now; None when it could (disabled is expected)."""
    if service is None:
        return "Nova has no nova-compute service for it"
    if service.forced_down:
        return "its nova-compute is forced down"
    if service.state != "up":
        return "its nova-compute is down"
    return None


def judge_spares(spares: Iterable[str], services: Iterable[ComputeService]) -> dict[str, str]:
    """The spares that could not take instances now, and why."""
    by_host = {s.host: s for s in services}
    verdicts = {name: why_unready(name, by_host.get(name)) for name in spares}
    return {name: why for name, why in verdicts.items() if why is not None}


@dataclass(frozen=True)
class Readiness:
    checked_at: str
    unready: Mapping[str, str]


class ReadinessStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self._key = f"{prefix}:spares:readiness"

    def save(self, readiness: Readiness, max_age_s: float) -> None:
        """Kept `max_age_s`: a verdict nobody renews (no prober running) ages out to unknown."""
        body = {"checked_at": readiness.checked_at, "unready": dict(readiness.unready)}
        with translate_errors():
            self.redis.set(self._key, json.dumps(body), px=max(1, int(max_age_s * 1000)))

    def load(self) -> Readiness | None:
        with translate_errors():
            raw = self.redis.get(self._key)
        if raw is None:
            return None
        body = json.loads(raw)
        return Readiness(str(body["checked_at"]), {str(k): str(v) for k, v in body["unready"].items()})

    def unready(self) -> dict[str, str]:
        """Spare -> why it is not ready, as of the last check (empty when none or unknown)."""
        found = self.load()
        return (
            {}
            if found is None
            else {k: f"{v} (checked {found.checked_at})" for k, v in found.unready.items()}
        )


def check_spares(
    spares: Iterable[str], compute: Compute, store: ReadinessStore, now: datetime, max_age_s: float
) -> Readiness:
    """One round: Nova's nova-compute services against the inventory's reserved spares."""
    names = sorted(set(spares))
    services = retry_transient(compute.compute_services) if names else []
    readiness = Readiness(now.isoformat(timespec="seconds"), judge_spares(names, services))
    store.save(readiness, max_age_s)
    for name, why in readiness.unready.items():
        log.warning("reserved spare not ready", extra={"host": name, "reason": why})
    return readiness
