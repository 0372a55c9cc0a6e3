"""Allow ``python -m berth``."""

from berth.cli.app import main

main()
