"""``pipeline.yaml``: one typed config for the whole loop (each section takes a stage's own fields)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tooltune.safeload import load_config
from tooltune.registry.gates import GateConfig
from tooltune.tools.sources import ServiceSource

__all__ = ["PipelineConfig", "ServiceSource"]


class PipelineConfig(BaseModel):
    """``pipeline.yaml``: the sections take the fields of each stage's own config."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("tooltune-model", description="Model name in the registry.")
    work_dir: Path = Field(Path(".tooltune/pipeline"), description="Where every step's outputs are kept (and cached).")
    services: list[ServiceSource] = Field(default_factory=list, description="Tool sources to discover; their catalogs are merged.")
    collect: Path | None = Field(
        None, description="services.yaml: train on the data the services publish (tooltune collect) instead of "
                          "discover + data build, and gate each service on its own tests and min_accuracy_required.")
    specialize: bool = Field(
        False, description="When gating blocks with strategy 'specialize', train one LoRA adapter per failing "
                           "service on its own data and deploy it to that service only if it passes that service's gate.")
    data: dict[str, Any] = Field(default_factory=dict, description="DataConfig fields (catalog and output_dir are set by the pipeline).")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields (data_dir and output_dir are set by the pipeline).")
    eval: dict[str, Any] = Field(default_factory=dict, description="EvalConfig fields (model, data_dir and output_dir are set by the pipeline).")
    gates: GateConfig = Field(default_factory=GateConfig, description="Deployment gates.")
    registry_url: str | None = Field(None, description="SQLAlchemy URL; default $TOOLTUNE_DB_URL, else .tooltune/registry.db.")
    deploy: bool = Field(True, description="Deploy the candidate when every gate passes.")
    actor: str = Field("pipeline", description="Recorded as the actor of registrations and deployments.")

    @model_validator(mode="after")
    def _one_data_source(self) -> PipelineConfig:
        if bool(self.services) == bool(self.collect):
            raise ValueError("give either services (tool sources to discover, then data build) or collect "
                             "(a services.yaml of publishers), not both and not neither")
        if self.specialize and not self.collect:
            raise ValueError("specialize needs collect: a service's adapter is trained on that service's published data")
        return self

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Read ``path``; relative paths inside it are taken from its folder."""
        path = Path(path)
        config = load_config(cls, path)
        data = {**config.data}
        for key in ("curated", "logs", "corrections"):  # the data files, as `data build --config` reads them
            if isinstance(data.get(key), list):
                data[key] = [str(_under(path.parent, Path(p))) for p in data[key]]
        collect = _under(path.parent, config.collect) if config.collect else None
        return config.model_copy(update={"work_dir": _under(path.parent, config.work_dir), "data": data, "collect": collect})


def _under(base: Path, path: Path) -> Path:
    # normpath, not resolve(): `configs/../.tooltune` reads as `.tooltune` and symlinks stay as given.
    return path if path.is_absolute() else Path(os.path.normpath(base / path))
