from __future__ import annotations

from cloudcore.cli import main

main()
