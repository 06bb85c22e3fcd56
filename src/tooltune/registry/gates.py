"""Deployment gates: is the candidate good enough to replace what is deployed, and for which services?

``evaluate_gates`` is a pure function of two metric sets and a ``GateConfig``; it records every
check it made with its numbers, so a decision can be audited later. Checks come in two scopes:

- **global** (whole suite): overall accuracy must beat the deployed model's; irrelevance and
  zero-shot accuracy and each critical category must reach their minimums. Any failure blocks
  the whole deployment.
- **scoped**: category and critical-tool regressions, critical-tool minimums. Without
  per-service metrics they run on the whole suite (and block). With per-service metrics they run
  on each service's own breakdown, together with the service's overall regression, and only
  that service fails: the decision is then *partial* — the new model for passing services, the
  previous one kept for failing services.

With per-service metrics, a service's own tests can also carry its own minimum
(``service_min_accuracy``, e.g. from its publisher's ``min_accuracy_required``).

**Fallback strategy** when services fail (``GateDecision.fallback``, derived from the recorded
checks and config, so it reads the same after a round trip through the registry):

- fewer than ``partial_below`` (20%) of the services fail → *partial*: the new model for the
  passing services, the previous one kept for the failing ones, their owners listed;
- from 20% up to ``specialize_above`` (50%) → *blocked*, with the failure pattern analysed (the
  categories and critical tools that fail in more than one service point at the training data,
  not at one service);
- above 50% → *blocked*, and ``specialize`` is suggested: one LoRA adapter per failing service,
  trained on its own data and registered for that service only (``pipeline.specialize``).

Accuracies are fractions in [0, 1]; regressions and improvements are in percentage points.
"""

from __future__ import annotations

import enum
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from tooltune.safeload import load_config
from tooltune.registry.metrics import Breakdown, EvalMetrics

GLOBAL = "global"
"""``scope`` of a check on the whole suite (otherwise the scope is a service name)."""
_EPS = 1e-9  # float noise in accuracy arithmetic must not flip a check


class GateConfig(BaseModel):
    """Thresholds a candidate must meet before it replaces the deployed model."""

    model_config = ConfigDict(extra="forbid")

    min_improvement_points: float = Field(
        0.0, ge=0, description="Overall accuracy must beat the deployed model's by more than this many points (0: any gain).")
    max_regression_points: float = Field(
        2.0, ge=0, description="No category, critical tool or service may drop more than this many points.")
    critical_tools: list[str] = Field(
        default_factory=list, description="Tools that must reach critical_min and may not regress (e.g. payments).")
    critical_categories: list[str] = Field(
        default_factory=list, description="Categories that must reach critical_min (e.g. irrelevance).")
    critical_min: float = Field(0.98, ge=0, le=1, description="Minimum accuracy of every critical tool and category.")
    min_irrelevance: float | None = Field(
        0.8, ge=0, le=1, description="Minimum accuracy on the irrelevance category (abstaining); null turns it off.")
    min_zero_shot: float | None = Field(
        None, ge=0, le=1, description="Minimum accuracy on the zero-shot split (held-out tools); null turns it off.")
    zero_shot_split: str = Field("test_zero_shot", description="Name of the zero-shot split in per_split.")
    service_min_accuracy: dict[str, float] = Field(
        default_factory=dict, description="Per service: accuracy its own tests must reach (its publisher's min_accuracy_required).")
    service_owners: dict[str, str] = Field(
        default_factory=dict, description="Per service: who to tell when it fails its gate.")
    partial_below: float = Field(
        0.2, gt=0, le=1, description="Deploy partially while fewer than this share of services fail; otherwise block.")
    specialize_above: float = Field(
        0.5, ge=0, le=1, description="Above this share of failing services, suggest one specialized adapter per failing service.")

    @model_validator(mode="after")
    def _fractions(self) -> GateConfig:
        bad = {s: v for s, v in self.service_min_accuracy.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"service_min_accuracy must hold fractions in [0, 1]; got {bad}")
        return self

    @classmethod
    def load(cls, path: str | Path) -> GateConfig:
        """Read a YAML file: the fields at top level, or under a ``gates:`` key (a pipeline.yaml's
        section); every problem listed with its line, as for every other config file."""
        def unwrap(data: dict[str, Any]) -> dict[str, Any]:
            return data["gates"] if isinstance(data.get("gates"), dict) else data

        return load_config(cls, path, prepare=unwrap)


class Outcome(str, enum.Enum):
    DEPLOY = "deploy"
    """Every check passed: deploy to all services."""
    PARTIAL = "partial"
    """Global checks passed, some services failed: deploy only to the passing services."""
    BLOCKED = "blocked"
    """A global check failed, or every service did: deploy nothing."""

    def __str__(self) -> str:
        return self.value


class CheckName(str, enum.Enum):
    """Stable codes of the checks; ``subject`` says which category, tool or split."""

    OVERALL = "overall"
    IRRELEVANCE = "irrelevance"
    ZERO_SHOT = "zero_shot"
    CRITICAL_CATEGORY = "critical_category"
    CATEGORY_REGRESSION = "category_regression"
    CRITICAL_TOOL = "critical_tool"
    CRITICAL_TOOL_REGRESSION = "critical_tool_regression"
    SERVICE_REGRESSION = "service_regression"
    SERVICE_MINIMUM = "service_minimum"

    def __str__(self) -> str:
        return self.value


class Check(BaseModel):
    """One check with the numbers it was decided on (fractions; ``delta_points`` in points)."""

    model_config = ConfigDict(frozen=True)

    name: CheckName
    subject: str | None = Field(None, description="Category, tool or split checked (None for overall).")
    scope: str = Field(GLOBAL, description="'global' or the service whose breakdown was checked.")
    passed: bool
    observed: float | None = Field(None, description="Candidate's accuracy (None: not measured).")
    threshold: float | None = Field(None, description="Accuracy the candidate had to reach (None: nothing to compare).")
    baseline: float | None = Field(None, description="Deployed model's accuracy, where compared.")
    delta_points: float | None = Field(None, description="observed − baseline, in percentage points.")
    message: str

    @property
    def label(self) -> str:
        where = f"{self.name}:{self.subject}" if self.subject else str(self.name)
        return where if self.scope == GLOBAL else f"{self.scope}/{where}"


Strategy = Literal["none", "partial", "blocked_pattern", "specialize", "blocked_global"]


class Fallback(BaseModel):
    """What happens to the services when some fail, and why (see the module doc)."""

    strategy: Strategy
    failing_services: list[str] = Field(default_factory=list)
    failing_fraction: float | None = Field(None, description="Failing services / services evaluated.")
    owners: dict[str, str | None] = Field(default_factory=dict, description="Owner of each failing service.")
    common_categories: dict[str, int] = Field(
        default_factory=dict, description="Weak categories → how many failing services share them (most shared first).")
    common_tools: dict[str, int] = Field(
        default_factory=dict, description="Failing critical tools → how many failing services share them.")
    failed_checks: dict[str, int] = Field(default_factory=dict, description="Failed check code → count.")
    message: str


class GateDecision(BaseModel):
    """Every check, the outcome, and which services get the candidate."""

    outcome: Outcome
    passed: bool = Field(description="True when every check passed (outcome 'deploy').")
    checks: list[Check]
    deploy_services: list[str] = Field(default_factory=list, description="Services that get the candidate (partial).")
    keep_services: list[str] = Field(default_factory=list, description="Services that keep the deployed model.")
    config: GateConfig
    id: int | None = Field(None, description="Row id once recorded by the registry.")
    candidate: str | None = Field(None, description="name@version of the candidate, once recorded.")
    baseline: str | None = Field(None, description="name@version it was compared with (None: nothing deployed).")

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fallback(self) -> Fallback:
        """The fallback strategy, derived from the checks and the config (never stored apart)."""
        return fallback_for(self.checks, self.config)

    def summary(self) -> str:
        """One line for the outcome, one for the fallback when services failed, then one per failed check."""
        who = f"{self.candidate} vs {self.baseline or 'nothing deployed'}: " if self.candidate else ""
        head = f"{who}{self.outcome} ({len(self.checks) - len(self.failed)}/{len(self.checks)} checks passed)"
        if self.outcome is Outcome.PARTIAL:
            head += f"; deploy to {', '.join(self.deploy_services)}, keep {', '.join(self.keep_services)}"
        fallback = self.fallback
        lines = [head] + ([f"  fallback {fallback.strategy}: {fallback.message}"] if fallback.strategy != "none" else [])
        return "\n".join([*lines, *(f"  FAILED {c.label}: {c.message}" for c in self.failed)])


def evaluate_gates(
    candidate: EvalMetrics | Mapping[str, Any],
    deployed: EvalMetrics | Mapping[str, Any] | None,
    config: GateConfig | None = None,
    *,
    service_baselines: Mapping[str, Breakdown | Mapping[str, Any]] | None = None,
) -> GateDecision:
    """Decide whether ``candidate`` may replace ``deployed`` (None when nothing is deployed yet).

    ``service_baselines`` overrides ``deployed.per_service`` for services that a different
    version serves (after a partial deployment each service is compared with its own model)."""
    config = config or GateConfig()
    cand = EvalMetrics.coerce(candidate, where="candidate metrics")
    base = EvalMetrics.coerce(deployed, where="deployed metrics") if deployed is not None else None

    overrides = dict(service_baselines or {})
    checks = [_overall(cand, base, config)]
    if config.min_irrelevance is not None:
        checks.append(_minimum(CheckName.IRRELEVANCE, None, cand.per_category.get("irrelevance"),
                               config.min_irrelevance, GLOBAL, "category irrelevance"))
    if config.min_zero_shot is not None:
        checks.append(_minimum(CheckName.ZERO_SHOT, config.zero_shot_split, cand.per_split.get(config.zero_shot_split),
                               config.min_zero_shot, GLOBAL, "split"))
    for category in config.critical_categories:
        checks.append(_minimum(CheckName.CRITICAL_CATEGORY, category, cand.per_category.get(category),
                               config.critical_min, GLOBAL, "category"))

    services = sorted(cand.per_service)
    if services:
        for service in services:
            if service in overrides:
                base_service = Breakdown.model_validate(overrides[service])
            else:
                base_service = base.per_service.get(service) if base is not None else None
            checks.extend(_scoped(cand.per_service[service], base_service, config, service))
            if service in config.service_min_accuracy:
                checks.append(_minimum(CheckName.SERVICE_MINIMUM, None, cand.per_service[service].overall,
                                       config.service_min_accuracy[service], service, f"service {service} on its own tests"))
        covered = {tool for s in services for tool in cand.per_service[s].per_tool}
        orphans = [t for t in config.critical_tools if t not in covered]
        checks.extend(_critical_tools(cand, base, config, GLOBAL, orphans))
    else:
        checks.extend(_scoped(cand, base, config, GLOBAL))

    failed_scopes = {c.scope for c in checks if not c.passed}
    if GLOBAL in failed_scopes:
        outcome, deploy, keep = Outcome.BLOCKED, [], services
    elif not failed_scopes:
        outcome, deploy, keep = Outcome.DEPLOY, services, []
    elif sum(s in failed_scopes for s in services) / len(services) < config.partial_below - _EPS:
        deploy = [s for s in services if s not in failed_scopes]
        keep = [s for s in services if s in failed_scopes]
        outcome = Outcome.PARTIAL
    else:  # too many services fail for a partial deployment: the fallback says what to do instead
        outcome, deploy, keep = Outcome.BLOCKED, [], services
    return GateDecision(outcome=outcome, passed=outcome is Outcome.DEPLOY, checks=checks,
                        deploy_services=deploy, keep_services=keep, config=config)


def _pct(x: float | None) -> str:
    return "not measured" if x is None else f"{100 * x:.1f}%"


def _points(observed: float, baseline: float) -> float:
    return round(100 * (observed - baseline), 6)


def _overall(cand: EvalMetrics, base: EvalMetrics | None, config: GateConfig) -> Check:
    if base is None:
        return Check(name=CheckName.OVERALL, passed=True, observed=cand.overall,
                     message=f"overall {_pct(cand.overall)}; nothing deployed to beat")
    threshold = base.overall + config.min_improvement_points / 100
    delta = _points(cand.overall, base.overall)
    passed = delta > config.min_improvement_points + _EPS
    verdict = "beats" if passed else "does not beat"
    return Check(name=CheckName.OVERALL, passed=passed, observed=cand.overall, threshold=threshold,
                 baseline=base.overall, delta_points=delta,
                 message=f"overall {_pct(cand.overall)} {verdict} deployed {_pct(base.overall)} "
                         f"by more than {config.min_improvement_points:g} points ({delta:+.1f})")


def _minimum(name: CheckName, subject: str | None, observed: float | None, minimum: float, scope: str,
             kind: str) -> Check:
    what = f"{kind} {subject}" if subject else kind
    if observed is None:
        return Check(name=name, subject=subject, scope=scope, passed=False, threshold=minimum,
                     message=f"{what} was not measured; evaluate it or remove the requirement from the gate config")
    passed = observed + _EPS >= minimum
    return Check(name=name, subject=subject, scope=scope, passed=passed, observed=observed, threshold=minimum,
                 message=f"{what} {_pct(observed)} {'≥' if passed else '<'} required {_pct(minimum)}")


def _regression(name: CheckName, subject: str | None, observed: float | None, baseline: float | None,
                config: GateConfig, scope: str) -> Check:
    label = subject or f"service {scope}"
    if baseline is None:
        return Check(name=name, subject=subject, scope=scope, passed=True, observed=observed,
                     message=f"{label} {_pct(observed)}; no deployed baseline to regress from")
    if observed is None:
        return Check(name=name, subject=subject, scope=scope, passed=False, baseline=baseline,
                     message=f"{label} was measured for the deployed model ({_pct(baseline)}) but not for the candidate; "
                             "evaluate both on the same suite")
    delta = _points(observed, baseline)
    passed = -delta <= config.max_regression_points + _EPS
    return Check(name=name, subject=subject, scope=scope, passed=passed, observed=observed, baseline=baseline,
                 threshold=baseline - config.max_regression_points / 100, delta_points=delta,
                 message=f"{label} {_pct(observed)} vs deployed {_pct(baseline)} ({delta:+.1f} points; "
                         f"at most -{config.max_regression_points:g} allowed)")


def _scoped(cand: Breakdown, base: Breakdown | None, config: GateConfig, scope: str) -> list[Check]:
    checks = []
    if scope != GLOBAL:
        checks.append(_regression(CheckName.SERVICE_REGRESSION, None, cand.overall,
                                  base.overall if base else None, config, scope))
    categories = list(cand.per_category) + [c for c in (base.per_category if base else {}) if c not in cand.per_category]
    for category in categories:
        checks.append(_regression(CheckName.CATEGORY_REGRESSION, category, cand.per_category.get(category),
                                  base.per_category.get(category) if base else None, config, scope))
    tools = config.critical_tools if scope == GLOBAL else [t for t in config.critical_tools if t in cand.per_tool]
    checks.extend(_critical_tools(cand, base, config, scope, tools))
    return checks


def _critical_tools(cand: Breakdown, base: Breakdown | None, config: GateConfig, scope: str,
                    tools: list[str]) -> list[Check]:
    checks = []
    for tool in tools:
        observed = cand.per_tool.get(tool)
        checks.append(_minimum(CheckName.CRITICAL_TOOL, tool, observed, config.critical_min, scope, "tool"))
        if observed is not None:
            checks.append(_regression(CheckName.CRITICAL_TOOL_REGRESSION, tool, observed,
                                      base.per_tool.get(tool) if base else None, config, scope))
    return checks


def fallback_for(checks: list[Check], config: GateConfig) -> Fallback:
    """The fallback strategy of a set of checks (see the module doc)."""
    failed = [c for c in checks if not c.passed]
    codes = dict(Counter(str(c.name) for c in failed).most_common())
    services = sorted({c.scope for c in checks if c.scope != GLOBAL})
    if any(c.scope == GLOBAL for c in failed):
        labels = ", ".join(c.label for c in failed if c.scope == GLOBAL)
        return Fallback(strategy="blocked_global", failed_checks=codes,
                        message=f"a suite-wide check failed ({labels}): no service gets the candidate")
    failing = sorted({c.scope for c in failed})
    if not failing:
        return Fallback(strategy="none", message="every check passed" if services else "no per-service results")
    fraction = len(failing) / len(services)
    owners = {s: config.service_owners.get(s) for s in failing}
    categories, tools = _pattern(checks, failing, config)
    share = f"{len(failing)} of {len(services)} services ({fraction:.0%}) fail"
    who = ", ".join(f"{s} (owner {owners[s] or 'unknown'})" for s in failing)
    shared = _shared(categories, tools, len(failing))
    if fraction < config.partial_below - _EPS:
        strategy: Strategy = "partial"
        message = f"{share}: partial deployment; {who} keep their previous model"
    elif fraction <= config.specialize_above + _EPS:
        strategy = "blocked_pattern"
        message = f"{share} (at least {config.partial_below:.0%}): blocked; failing: {who}; {shared}"
    else:
        strategy = "specialize"
        message = (f"{share} (over {config.specialize_above:.0%}): blocked; failing: {who}; {shared}; "
                   "run with specialize to train one adapter per failing service on its own data")
    return Fallback(strategy=strategy, failing_services=failing, failing_fraction=round(fraction, 6), owners=owners,
                    common_categories=categories, common_tools=tools, failed_checks=codes, message=message)


def _pattern(checks: list[Check], failing: list[str], config: GateConfig) -> tuple[dict[str, int], dict[str, int]]:
    """Categories weak in each failing service (regressed, or below both the service's minimum
    and its own overall accuracy: the ones pulling it down) and failing critical tools, counted
    over the failing services."""
    categories: Counter[str] = Counter()
    tools: Counter[str] = Counter()
    for service in failing:
        minimum = config.service_min_accuracy.get(service)
        own = [c for c in checks if c.scope == service]
        overall = next((c.observed for c in own if c.name in (CheckName.SERVICE_MINIMUM, CheckName.SERVICE_REGRESSION)
                        and c.observed is not None), None)
        bar = min(minimum, overall) if minimum is not None and overall is not None else minimum
        weak = {c.subject for c in own if c.name is CheckName.CATEGORY_REGRESSION and c.subject and
                (not c.passed or (bar is not None and c.observed is not None and c.observed + _EPS < bar))}
        categories.update(weak)
        tools.update({c.subject for c in own if not c.passed and c.subject and
                      c.name in (CheckName.CRITICAL_TOOL, CheckName.CRITICAL_TOOL_REGRESSION)})
    return dict(categories.most_common()), dict(tools.most_common())


def _shared(categories: dict[str, int], tools: dict[str, int], failing: int) -> str:
    if failing < 2:
        parts = [f"weak categories: {', '.join(categories)}" if categories else "",
                 f"failing critical tools: {', '.join(tools)}" if tools else ""]
        return "; ".join(p for p in parts if p) or "no category or critical tool stands out"
    common = [f"{k} ({n}/{failing} services)" for k, n in {**categories, **tools}.items() if n > 1]
    return ("shared by several failing services: " + ", ".join(common) + " (look at the training data for these)"
            if common else "no category or critical tool is shared: the failures look service-specific")
