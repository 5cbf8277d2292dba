"""``python -m keadm``: the same as the ``keadm`` command."""

from keadm.cli import main

main()
