"""Runtime: the running configuration and the parts that follow it on reload.

A reload validates the new file completely before touching anything; an invalid one
is refused with every error logged, and the old configuration keeps running. The plan
files the config names are read again with it (an invalid plan refuses the reload like
any config error): new incidents follow the new plans, incidents in flight keep the
plan frozen into them when they opened.

Keys of ``service:`` that are read once at start (``ServiceConfig.RESTART_ONLY``: listen,
redis_url, the Redis pool, the HTTP limits, …) cannot change on a reload: a change to one
is named in ``reload_needs_restart`` (key names only, never values: a Redis URL carries
its password) and the running value is kept, while the rest of the new file applies.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from monitor.checks.checker import Checker
from monitor.checks.metrics import ServiceMetrics
from monitor.checks.scheduler import Scheduler
from monitor.config.model import Config, ServiceConfig, load_config
from monitor.core.errors import ConfigError
from monitor.core.target import Target

log = structlog.get_logger("hallmon.runtime")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"expected a shard like 0/3, got {text!r}") from None
        if not 0 <= i < n:
            raise ValueError(f"shard index must be in 0..{n - 1}, got {i}")
        return cls(i, n)

    def select(self, targets: tuple[Target, ...]) -> list[Target]:
        return [t for t in targets if t.in_shard(self.index, self.count)]


@dataclass
class Runtime:
    config: Config
    path: str | None
    metrics: ServiceMetrics
    shard: Shard = field(default_factory=Shard)
    checker: Checker | None = None
    scheduler: Scheduler | None = None

    @property
    def targets(self) -> list[Target]:
        return self.shard.select(self.config.targets)

    def start(self, checker: Checker, scheduler: Scheduler) -> None:
        self.checker, self.scheduler = checker, scheduler
        scheduler.set_targets(self.targets)

    def reload(self) -> bool:
        if self.path is None:
            return False
        try:
            new = load_config(self.path)
        except ConfigError as err:
            for issue in err.issues:
                log.error("reload_refused", issue=str(issue))
            self.metrics.reloads.labels("refused").inc()
            return False
        new = self._keep_restart_only(new)
        plans = sorted(ref for ref, plan in new.plans.items() if self.config.plans.get(ref) != plan)
        self.config = new
        targets = self.targets
        if self.checker:
            self.checker.retain(targets)
            self.checker.tracker.uplinks = new.uplinks
        if self.scheduler:
            self.scheduler.set_targets(targets)
        self.metrics.reloads.labels("applied").inc()
        log.info("reload_applied", targets=len(targets), plans_changed=plans)
        return True

    def _keep_restart_only(self, new: Config) -> Config:
        old = self.config.service
        changed = [k for k in ServiceConfig.RESTART_ONLY if getattr(new.service, k) != getattr(old, k)]
        if not changed:
            return new
        log.warning("reload_needs_restart", keys=[f"service.{k}" for k in changed],
                    effect="running values kept; the rest of the file applies; restart to apply these")
        service = new.service.model_copy(update={k: getattr(old, k) for k in changed})
        kept = Config.model_validate({**{k: getattr(new, k) for k in Config.model_fields}, "service": service})
        return kept.with_plans(new.plans)
