"""load_config / validate_config: every config file is read and its problems reported one way."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tooltune.errors import ConfigError
from tooltune.safeload import load_config, read_config_file, validate_config


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(8, gt=0)
    names: list[str] = Field(default_factory=list)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the thing is called.")
    inner: Inner = Field(default_factory=Inner)
    items: list[Inner] = Field(default_factory=list)
    key: SecretStr | None = None


def problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [line.strip() for line in str(error.value).splitlines()[1:]]


def test_every_problem_names_file_line_and_field_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  rank: 0\n  rnak: 3\nitems:\n  - rank: 2\n  - {rank: -1, names: x}\ncolour: red\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    assert str(info.value).splitlines()[0] == f"{path}: 6 problems:"
    assert problems(info) == [
        "name: required; add it (What the thing is called).",
        f"{path}:2: inner.rank: Input should be greater than 0 (got 0)",
        f"{path}:3: inner.rnak: unknown field; did you mean 'inner.rank'?",
        f"{path}:6: items.1.rank: Input should be greater than 0 (got -1)",
        f"{path}:6: items.1.names: Input should be a valid list (got 'x')",
        f"{path}:7: colour: unknown field; known fields: name, inner, items, key.",
    ]


def test_values_from_outside_the_file_name_their_origin_and_secrets_are_not_echoed():
    with pytest.raises(ConfigError) as info:
        validate_config(Outer, {"name": "n", "inner": {"rank": "many"}, "key": 12345}, source="thing config",
                        origins={("inner", "rank"): "from --set inner.rank=many"}, problems=["--set 'x': expected key=value."])
    assert str(info.value).splitlines()[0] == "thing config: 3 problems:"
    found = problems(info)
    assert found[0] == "--set 'x': expected key=value."
    assert found[1].startswith("inner.rank: Input should be a valid integer") and found[1].endswith("[from --set inner.rank=many]")
    assert found[2] == "key: Input should be a valid string" and "12345" not in str(info.value)


def test_unreadable_files_are_config_errors_naming_the_place(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: a\n  rank: 4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:7: not valid YAML"):
        load_config(Outer, tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping of field: value at the top level, got list"):
        load_config(Outer, tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: no such file"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert read_config_file(tmp_path / "empty.yaml").data == {}


def test_prepare_reshapes_the_mapping_first(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("wrapper:\n  name: n\n  inner: {rank: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path, prepare=lambda raw: raw["wrapper"])
    # The lines are the file's paths; a field that moved has none, and is named by its path alone.
    assert problems(info) == ["inner.rank: Input should be greater than 0 (got 0)"]
    file = read_config_file(path)
    assert file.lines[("wrapper", "inner")] == 3 and file.data["wrapper"]["name"] == "n"
