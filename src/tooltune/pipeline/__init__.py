"""The whole loop: discover (or collect) → data → evaluate the base → train → evaluate the
candidate → compare → gate → register (→ deploy).

Bottom-up:

- :mod:`~tooltune.pipeline.config`: ``pipeline.yaml`` (:class:`PipelineConfig`; typed sections);
- :mod:`~tooltune.pipeline.cache`: the step cache, each step keyed by what it depends on;
- :mod:`~tooltune.pipeline.steps`: the steps on any data (discover, data build, train, evaluate,
  compare, register and gate);
- :mod:`~tooltune.pipeline.collected`: the data source ``collect: services.yaml`` (per-service
  tests and gates, specialized adapters);
- :mod:`~tooltune.pipeline.run`: :func:`run_pipeline`, the steps in order;
- :mod:`~tooltune.pipeline.schedule`: weekly retraining and daily failure collection;
- :mod:`~tooltune.pipeline.present`: how a run looks in a terminal.
"""

from tooltune.pipeline.cache import DONE, Progress, StepRecord
from tooltune.pipeline.config import PipelineConfig, ServiceSource
from tooltune.pipeline.run import PipelineResult, run_pipeline

__all__ = ["DONE", "PipelineConfig", "PipelineResult", "Progress", "ServiceSource", "StepRecord", "run_pipeline"]
