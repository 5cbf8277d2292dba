from __future__ import annotations

from edgecore.cli import main

main()
