"""The ``/.well-known/mcp-training-data.json`` document and the publisher's own metadata file.

:class:`TrainingDataDocument` is the one home of the document's shape: the committed JSON Schema
(``schema/mcp-training-data.schema.json``) is generated from it (:func:`document_schema`) and a test
keeps the two equal, so an orchestrator written in another language can validate what it reads.

:class:`PublicationMetadata` is what a service team writes in ``DIR/metadata.yaml`` beside its data:
owner, version, consent, restrictions and its test gate (``min_accuracy_required``). Everything
else in the document (counts, tools covered, catalog hash, last update) is computed from the data.

It lives in ``data/`` because both sides read it: the publisher (:mod:`tooltune.publish`) writes
it and the collector (:mod:`tooltune.collect`) validates what it pulls against it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tooltune.safeload import load_config

SCHEMA_VERSION = "1"
SCHEMA_PATH = Path(__file__).parent / "schema" / "mcp-training-data.schema.json"
WELL_KNOWN_PATH = "/.well-known/mcp-training-data.json"
ORCHESTRATOR_ROLE = "ml_orchestrator"
"""The only role that may read training and test data."""
FORMATS = ("tooltune", "openai", "chatml")


class Consent(BaseModel):
    """On what basis the examples may be used for training."""

    model_config = ConfigDict(extra="forbid")

    training_allowed: bool = Field(True, description="The service team allows training on these examples.")
    basis: str = Field("service-owned data", description="Why: e.g. 'user consent (ToS 4.2)', 'synthetic only'.")


class PublicationMetadata(BaseModel):
    """``DIR/metadata.yaml``: what the service team states about its published data."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(None, description="Dataset version the team assigns; default: a hash of the examples.")
    owner: str | None = Field(None, description="Who to contact when the service's gate fails (team or address).")
    anonymized: bool = Field(False, description="Run the anonymizer on every example before it leaves the service.")
    consent: Consent = Field(default_factory=Consent, description="Training consent and its basis.")
    restrictions: list[str] = Field(default_factory=list, description="Use restrictions, e.g. 'no external vendors'.")
    min_accuracy_required: float = Field(0.9, ge=0, le=1, description="Accuracy the model must reach on this service's tests.")

    @classmethod
    def load(cls, path: Path) -> PublicationMetadata:
        """Read ``path``; a missing file gives the defaults, a bad one names the file, line and field."""
        return load_config(cls, path) if path.exists() else cls()


class Counts(BaseModel):
    total: int = Field(ge=0, description="Training examples published.")
    by_source: dict[str, int] = Field(description="Per provenance source: curated, production, synthetic, correction, imported.")


class TestSummary(BaseModel):
    total: int = Field(ge=0, description="Test scenarios published.")
    critical_scenarios: int = Field(ge=0, description="Scenarios marked meta.critical: true.")
    min_accuracy_required: float = Field(ge=0, le=1, description="The service's gate on its own tests.")
    by_category: dict[str, int] = Field(default_factory=dict, description="Scenarios per BFCL-style category.")


class Endpoints(BaseModel):
    training_dataset: str
    test_dataset: str
    catalog: str


class AuthInfo(BaseModel):
    type: Literal["bearer-jwt"] = "bearer-jwt"
    algorithms: list[str] = Field(description="JWT algorithms the service accepts.")
    required_role: str = Field(ORCHESTRATOR_ROLE, description="Role (in the token's roles claim) that reads the data.")
    rate_limit: str = Field(description="Requests per caller and window, e.g. '100/3600s'.")


class TrainingDataDocument(BaseModel):
    """``GET /.well-known/mcp-training-data.json``: what a service publishes and how to fetch it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    service: str = Field(min_length=1, description="Service name (as on the tools of its catalog).")
    version: str = Field(description="Dataset version.")
    owner: str | None = Field(None, description="Contact of the service team.")
    mcp_protocol_version: str = Field(description="MCP protocol version the service's tools are described in.")
    catalog_hash: str = Field(description="tooltune catalog hash of the tools the examples were written against.")
    counts: Counts
    tools_covered: list[str] = Field(description="Tools called by at least one training example.")
    last_updated: datetime | None = Field(description="Newest provenance.created_at among the examples.")
    quality: dict[str, int] = Field(description="Training examples per quality tier (high, medium, low).")
    anonymized: bool = Field(description="Examples were anonymized before leaving the service.")
    consent: Consent
    restrictions: list[str]
    formats: list[str] = Field(description="Values the format= parameter accepts.")
    endpoints: Endpoints
    auth: AuthInfo
    test_data: TestSummary


def document_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :class:`TrainingDataDocument`."""
    schema = TrainingDataDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://tooltune.dev/schemas/mcp-training-data.schema.json", **schema}


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerate the committed schema file (run after changing the models above)."""
    path.write_text(json.dumps(document_schema(), indent=2, ensure_ascii=False) + "\n")
    return path
