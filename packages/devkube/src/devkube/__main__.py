from __future__ import annotations

from devkube.cli import main

main()
