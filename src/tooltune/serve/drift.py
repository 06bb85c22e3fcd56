"""Schema drift while serving: are the live tools still the ones the deployed versions learned?

With ``--watch`` sources, :class:`DriftMonitor` discovers the live tools at start and every
``drift_interval`` minutes and has the registry compare them with the catalog each deployed
version was trained on (:meth:`tooltune.registry.Registry.check_live_models`, the catalog diff
rules). A breaking change marks the version stale for that service in the registry, and from
then on :meth:`~tooltune.registry.Registry.serving` routes the service's requests to an earlier
compatible version or the base, with an ``X-Tooltune-Warning`` header
(:func:`serving_warning`); a minor or patch change only warns. ``tooltune models check`` runs
the same check from a schedule, and any server reading the registry follows it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any

from tooltune.errors import TooltuneError
from tooltune.tools.sources import ServiceSource, discover_sources

logger = logging.getLogger(__name__)


class DriftMonitor:
    """A background thread checking the registry's deployed versions against live tool sources."""

    def __init__(self, registry: Any, sources: list[ServiceSource], interval_minutes: float):
        self.registry, self.sources, self.interval_s = registry, sources, interval_minutes * 60
        self.last: dict[str, Any] = {"checked_at": None, "drift": [], "error": None}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tooltune-drift", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def check(self) -> list[Any]:
        """One check now: discover every source, compare, log what drifted; the drift found."""
        try:
            drift = self.registry.check_live_models(discover_sources(self.sources))
        except TooltuneError as e:  # a source that is down: keep serving, say so, try again next time
            self.last = {"checked_at": _now(), "drift": self.last["drift"], "error": str(e)}
            logger.error("drift check: cannot read the live tools (%s); the last result stands", e)
            return self.last["drift"]
        known = {(d.model, d.service, d.summary()) for d in self.last["drift"]}
        for d in drift:
            if (d.model, d.service, d.summary()) in known:
                continue  # logged when it was found; /health and `models list` keep showing it
            if d.stale:
                logger.error("drift: %s is stale for service %s (%s); its requests fall back to an earlier compatible "
                             "version or the base. Migrate its data: %s", d.model, d.service, d.summary(), d.migrate_command)
            else:
                logger.warning("drift: the live tools of %s changed for %s (%s); it still serves", d.service, d.model,
                               d.summary())
        self.last = {"checked_at": _now(), "drift": drift, "error": None}
        return drift

    def status(self) -> dict[str, Any]:
        """For ``GET /health``: when the last check ran and what it found."""
        return {"checked_at": self.last["checked_at"], "error": self.last["error"],
                "stale": [f"{d.model} ({d.service})" for d in self.last["drift"] if d.stale],
                "changed": [f"{d.model} ({d.service}): {d.rating}" for d in self.last["drift"] if not d.stale],
                "interval_minutes": self.interval_s / 60, "sources": [s.describe() for s in self.sources]}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the monitor must outlive a bad check; the error is logged
                logger.exception("drift check failed")
            if not self.interval_s or self._stop.wait(self.interval_s):
                return


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def serving_warning(serving: Any, service: str | None) -> str | None:
    """The ``X-Tooltune-Warning`` text for a :class:`~tooltune.registry.records.Serving`, or None."""
    drift = serving.drift
    if drift is None:
        return None
    if serving.fell_back:
        answered = serving.model.ref if serving.model is not None else "the base model"
        text = (f"{serving.deployed.ref} is stale for service {service}: {drift.summary()}; answered by {answered}. "
                f"Migrate its data: {drift.migrate_command}")
    elif drift.stale:  # asked for by NAME@VERSION: served as asked
        text = f"{serving.deployed.ref} is stale for service {service}: {drift.summary()}"
    else:
        text = f"the live tools of {service} changed since {serving.deployed.ref} was trained: {drift.summary()}"
    return header_text(text)


def header_text(text: str) -> str:
    """HTTP header values are Latin-1: keep the text ASCII."""
    return text.replace("→", "->").encode("ascii", "replace").decode()
