"""Parse YAML and JSON that comes from outside (data files, configs, catalogs, logs) with limits.

Every YAML read in tooltune goes through :func:`load_yaml` / :func:`read_yaml` (config files
through :func:`load_config`, which also validates them into their typed model and reports every
problem with its file, line and field), and every JSON
file or line that a user or a production log supplies through :func:`loads_json` /
:func:`read_json`. Hostile input fails in milliseconds with the place and the limit it broke,
instead of running for minutes or ending in a RecursionError:

- nesting deeper than :data:`MAX_DEPTH` levels;
- numbers longer than :data:`MAX_NUMBER_CHARS` characters (a 100k-digit integer), and JSON's
  non-standard ``NaN``/``Infinity`` or floats that overflow to infinity;
- YAML aliases that expand past a budget (the "billion laughs": nested anchors, each used ten
  times, that a 1 KB file turns into a billion nodes) and aliases that contain themselves.

The limits are far above what real files need; they are module constants in
:mod:`tooltune.safeload.limits`, documented in docs/data-pipeline.md ("Hostile files").
"""

from tooltune.safeload.config import ConfigFile, load_config, read_config_file, validate_config
from tooltune.safeload.json_reader import JSONLimitError, loads_json, raw_decode, read_json
from tooltune.safeload.limits import ALIAS_BUDGET_FACTOR, ALIAS_BUDGET_MIN_NODES, MAX_DEPTH, MAX_NUMBER_CHARS
from tooltune.safeload.text import read_text
from tooltune.safeload.yaml_loader import SafeYAMLLoader, YAMLLimitError, load_yaml, read_yaml

__all__ = [
    "ALIAS_BUDGET_FACTOR", "ALIAS_BUDGET_MIN_NODES", "MAX_DEPTH", "MAX_NUMBER_CHARS",
    "ConfigFile", "JSONLimitError", "SafeYAMLLoader", "YAMLLimitError",
    "load_config", "load_yaml", "loads_json", "raw_decode", "read_config_file", "read_json", "read_text", "read_yaml",
    "validate_config",
]
