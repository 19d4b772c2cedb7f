"""Reading the Reports API audit log (opt-in, --with-audit-log): the latest of some events, and their parameters.

The log keeps events for a limited time (data: directory.toml [audit_log]): an event found is evidence, no event
found says nothing about what happened before the retention window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..resources import Activity


@dataclass(frozen=True)
class Logged:
    name: str  # the event name
    time: str  # RFC 3339, the activity's id.time
    actor: str | None
    parameters: Mapping[str, Any]  # name -> value or multiValue

    def values(self, name: str) -> list[str]:
        value = self.parameters.get(name)
        if isinstance(value, list):
            return [str(v) for v in value]
        return [v.strip() for v in str(value).split(",") if v.strip()] if value is not None else []


def events(activities: Sequence[Activity], names: tuple[str, ...]) -> list[Logged]:
    """Every event of these names, oldest first."""
    out = []
    for act in activities:
        actor = act.actor.email if act.actor else None
        for ev in act.events:
            if ev.name in names:
                params = {p.name: p.multiValue if p.multiValue is not None else p.value for p in ev.parameters}
                out.append(Logged(ev.name, act.id.time, actor, params))
    return sorted(out, key=lambda e: e.time)
