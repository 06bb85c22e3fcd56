import pytest

from tooltune.errors import RegistryError
from tooltune.registry.semver import FIRST, Version, bump, next_version
from tooltune.tools.diff import Rating


def test_first_model_is_1_0_0_whatever_the_rating():
    assert FIRST == Version(1, 0, 0)
    for rating in Rating:
        assert str(bump(None, rating)) == "1.0.0"


@pytest.mark.parametrize(("rating", "expected"), [
    (Rating.BREAKING, "3.0.0"),
    (Rating.MINOR, "2.5.0"),
    (Rating.PATCH, "2.4.8"),
    (Rating.NONE, "2.4.8"),
])
def test_bump_by_rating(rating, expected):
    assert str(bump("2.4.7", rating)) == expected


def test_next_version_rates_the_catalog_change(catalogs):
    v1, v2, v3, v1b = catalogs["v1"], catalogs["v2"], catalogs["v3"], catalogs["v1b"]
    assert next_version(None, None, v1)[0] == Version(1, 0, 0)
    assert next_version("1.0.0", v1, v1)[0] == Version(1, 0, 1)       # same tools: data/training change only
    assert next_version("1.0.0", v1, v1b)[0] == Version(1, 0, 1)      # description reworded: patch
    version, change = next_version("1.0.1", v1, v2)                    # tool added: minor
    assert version == Version(1, 1, 0) and change.rating is Rating.MINOR
    version, change = next_version("1.1.0", v2, v3)                    # parameter removed: major
    assert version == Version(2, 0, 0) and change.rating is Rating.BREAKING


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0-rc1", "01.0.0", ""])
def test_bad_versions_are_refused(text):
    with pytest.raises(RegistryError, match="MAJOR.MINOR.PATCH"):
        Version.parse(text)


def test_versions_order_numerically():
    assert Version.parse("1.10.0") > Version.parse("1.9.3")
