from __future__ import annotations

from keadm.cli import main

main()
