"""``DataConfig``: everything ``tooltune data build`` needs, as one typed object.

Built from YAML (:meth:`DataConfig.from_yaml`, relative paths resolved against the file's folder),
from CLI options, or directly in Python; all three give the same object. Every field has a
default and a one-line description, which the CLI help and ``docs/data-pipeline.md`` reuse.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tooltune.data.synth import SynthConfig
from tooltune.safeload import read_config_file, validate_config


FILE_LIST_FIELDS = ("curated", "other_domain_tools", "logs", "corrections")
"""DataConfig's lists of input files: taken from a config file's folder when relative."""


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- sources
    catalog: Path | None = Field(None, description="Tool catalog JSON (from `tooltune discover`); required to build.")
    curated: list[Path] = Field(default_factory=list, description="Curated example files (YAML or JSON), one per service.")
    synthetic: int = Field(0, ge=0, description="How many synthetic examples to generate (0: none).")
    synth: SynthConfig | None = Field(
        None, description="Generation knobs (mix, typo_rate, distractors…, docs/synthetic-data.md); n and seed come from synthetic and seed.")
    other_domain_tools: list[Path] = Field(
        default_factory=list, description="Catalog JSON files of other domains' tools, never called: "
        "synthesis offers them beside requests they cannot serve (synth.other_domains; docs/synthetic-data.md#other-domains).")
    logs: list[Path] = Field(default_factory=list, description="Production call logs: JSONL files or folders of them "
                             "(`tooltune serve --log-dir DIR` writes DIR/requests).")
    corrections: list[Path] = Field(default_factory=list, description="Corrections of production calls: JSONL or YAML "
                                    "files, or folders of JSONL (`tooltune serve` writes DIR/corrections).")
    seed: int = Field(0, description="Seed for generation and for every hash-based split choice.")
    output_dir: Path = Field(Path("data"), description="Where the split files, quarantine and report are written.")

    # --- validation and quality
    max_error_fraction: float = Field(
        0.2, ge=0.0, le=1.0,
        description="Fail the build when more than this share of all records is invalid (quarantined).")
    min_quality: float = Field(0.0, ge=0.0, le=1.0, description="Drop examples whose quality score is below this.")

    # --- deduplication and balance
    semantic_dedup: bool = Field(True, description="Drop near-duplicates (cosine >= near_dup_threshold) after exact dedup.")
    dedup_backend: Literal["auto", "minilm", "lexical"] = Field(
        "auto", description="Similarity backend: minilm (needs tooltune[embed]), lexical trigrams, or auto (minilm if installed).")
    near_dup_threshold: float = Field(0.95, gt=0.0, le=1.0, description="Cosine similarity at which two requests are near-duplicates.")
    balance_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Flag tools with fewer examples than this share of the per-tool mean.")

    # --- splits (see docs/data-pipeline.md, "Split design")
    held_out_tools: list[str] | None = Field(
        None, description="Tools held out entirely for test_zero_shot; default: a seeded-random zero_shot_fraction of the catalog.")
    zero_shot_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of catalog tools held out when held_out_tools is not given.")
    multistep_test_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of multi-step templates whose examples go to test_multistep (the rest train orchestration).")
    phrasing_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of each tool's templates held out for test_phrasing.")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of the pool for val (tuning and early stopping).")
    holdout_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of the pool for holdout (final checks; never used for tuning).")
    holdout_after: date | None = Field(None, description="Examples created after this date go to holdout (time-based split).")

    # --- contamination
    max_exact_contamination: int = Field(0, ge=0, description="Fail when more eval examples than this exactly repeat a train example.")
    max_near_dup_contamination: float | None = Field(
        0.02, ge=0.0, le=1.0,
        description="Fail when a larger share of any eval split near-duplicates train; below it they are removed. None skips the check.")

    @model_validator(mode="after")
    def _fractions_leave_a_train_set(self) -> DataConfig:
        taken = self.phrasing_fraction + self.val_fraction + self.holdout_fraction
        if taken >= 1.0:
            raise ValueError(
                f"phrasing_fraction + val_fraction + holdout_fraction is {taken:g}; it must stay below 1 "
                "so that examples are left for train (defaults 0.1 + 0.1 + 0.2)")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DataConfig:
        """Read a YAML mapping of the fields above; ``overrides`` (e.g. from CLI options) win.
        Relative paths in the file are taken from the file's folder."""
        file = read_config_file(path)
        config = validate_config(cls, {**file.data, **overrides}, source=file.path,
                                 lines={loc: line for loc, line in file.lines.items() if loc[0] not in overrides},
                                 origins={(name,): "overrides the file" for name in overrides})
        return config.model_copy(update=_resolved(config, file.path.parent, set(file.data) - set(overrides)))

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Field name → description, for CLI help and docs."""
        return {name: f.description or "" for name, f in cls.model_fields.items()}


def build_config(data: dict[str, Any], *, where: str = "data config") -> DataConfig:
    """Validate ``data`` into a :class:`DataConfig`, reporting every bad field at once."""
    return validate_config(DataConfig, data, source=where)


def _resolved(config: DataConfig, base: Path, from_file: set[str]) -> dict[str, Any]:
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    update: dict[str, Any] = {}
    for name in ("catalog", "output_dir"):
        value = getattr(config, name)
        if name in from_file and value is not None:
            update[name] = fix(value)
    for name in FILE_LIST_FIELDS:
        if name in from_file:
            update[name] = [fix(p) for p in getattr(config, name)]
    return update
