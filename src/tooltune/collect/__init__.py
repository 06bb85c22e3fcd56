"""The orchestrator side of decentralized training data: pull what services publish
(:mod:`tooltune.publish`), validate it against each service's catalog, build one dataset."""

from tooltune.collect.config import CollectConfig, ServiceEntry
from tooltune.collect.orchestrator import CollectReport, ServiceReport, build_dataset, collect_all

__all__ = ["CollectConfig", "CollectReport", "ServiceEntry", "ServiceReport", "build_dataset", "collect_all"]
