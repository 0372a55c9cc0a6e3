"""Allow ``python -m berth``."""

from berth.cli.entry import main

main()
