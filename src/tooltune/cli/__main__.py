"""``python -m tooltune.cli``: the ``tooltune`` command, for environments without the console script."""

from tooltune.cli.app import main

main()
