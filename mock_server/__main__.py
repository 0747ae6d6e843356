"""``python -m mock_server`` runs the ``zest-mock`` command."""

from mock_server.cli import main

main()
