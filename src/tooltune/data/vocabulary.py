"""A service's domain vocabulary: what users say, mapped to the values the tools want.

Curated files declare it (``domain_vocabulary``); synthetic generation applies it when phrasing
requests ("$50" → ``amount=5000``, "pending orders" → ``fulfillment_state="awaiting_shipment"``),
and the few-shot prompt backend quotes its rules.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Term(BaseModel):
    says: list[str] = Field(min_length=1, description='What users say, e.g. ["pending", "not shipped yet"].')
    param: str = Field(description='Parameter it sets, as "tool.param" or just "param" (any tool).')
    value: Any = Field(description='The value the tool wants, e.g. "awaiting_shipment".')

    def applies_to(self, tool: str, param: str) -> bool:
        return self.param in (param, f"{tool}.{param}")


class DomainVocabulary(BaseModel):
    rules: list[str] = Field(default_factory=list, description="Plain-language rules, e.g. 'amounts are in cents'.")
    terms: list[Term] = Field(default_factory=list)
    cents: list[str] = Field(
        default_factory=list,
        description='Parameters holding money in cents ("tool.param" or "param"): "$12.50" is written 1250.',
    )

    def is_cents(self, tool: str, param: str) -> bool:
        return param in self.cents or f"{tool}.{param}" in self.cents

    def phrases_for(self, tool: str, param: str, value: Any) -> list[str]:
        """What users may say for ``value`` of ``tool.param`` (empty when no term covers it)."""
        return [s for t in self.terms if t.applies_to(tool, param) and t.value == value for s in t.says]

    def merge(self, other: DomainVocabulary) -> DomainVocabulary:
        return DomainVocabulary(rules=[*self.rules, *other.rules], terms=[*self.terms, *other.terms],
                                cents=sorted({*self.cents, *other.cents}))
