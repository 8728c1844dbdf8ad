"""``python -m universal_healer`` runs the ``healer`` command line."""

from universal_healer.cli import main

main()
