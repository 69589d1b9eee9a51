"""What a host recovery needs from the outside, built by the job boundary (receiver/jobs.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from receiver.adapters.redis_inventory import InventoryStore
from receiver.ports import Compute, PowerController
from receiver.settings import Settings


@dataclass
class HostRecoveryDeps:
    inventory: InventoryStore
    compute: Callable[[], Compute]
    power: Callable[[str], PowerController]  # by fence driver name
    settings: Settings
