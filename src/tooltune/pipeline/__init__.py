"""The whole loop: discover (or collect) → data → train → evaluate → compare → gate → register (→ deploy).

- :mod:`~tooltune.pipeline.config`: ``pipeline.yaml`` (:class:`PipelineConfig`);
- :mod:`~tooltune.pipeline.steps`: :func:`run_pipeline`, each step cached by what it depends on;
- :mod:`~tooltune.pipeline.collected`: the data source ``collect: services.yaml`` (per-service
  tests and gates, specialized adapters);
- :mod:`~tooltune.pipeline.schedule`: weekly retraining and daily failure collection;
- :mod:`~tooltune.pipeline.present`: how a run looks in a terminal.
"""

from tooltune.pipeline.config import PipelineConfig, ServiceSource
from tooltune.pipeline.steps import DONE, PipelineResult, Progress, StepRecord, run_pipeline

__all__ = ["DONE", "PipelineConfig", "PipelineResult", "Progress", "ServiceSource", "StepRecord", "run_pipeline"]
