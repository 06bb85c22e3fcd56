import tooltune


def test_all_names_are_exported_and_public():
    for name in tooltune.__all__:
        assert hasattr(tooltune, name), name
        assert not name.startswith("_")
    assert sorted(tooltune.__all__) == tooltune.__all__


def test_every_error_derives_from_the_base():
    for name in tooltune.__all__:
        obj = getattr(tooltune, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tooltune.TooltuneError), name
