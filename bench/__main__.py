"""``python -m bench [names...] [--quick] [--nodes N] [--pods N] [--json FILE]``.

With no names every benchmark runs, in the order below. ``--quick`` scales
each one down for a quick check (seconds, not minutes); its figures are not
the ones to report. The exit code is 0 when every benchmark that ran met its
target (or could not be measured here, which it says), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shlex
import sys
from typing import Any

from bench import Result, machine

BENCHMARKS = ["codec", "cloudhub_conns", "delivery", "delivery_api", "edgecore"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes, for a check")
    parser.add_argument("--nodes", type=int, help="edge nodes (cloudhub_conns, delivery)")
    parser.add_argument("--pods", type=int, help="pods (delivery, edgecore)")
    parser.add_argument(
        "--client-procs", type=int, help="edge client processes (cloudhub_conns, delivery)"
    )
    parser.add_argument(
        "--trace", action="store_true", help="cloudhub_conns: tracemalloc the server (slower)"
    )
    parser.add_argument("--json", help="append each result as one JSON line to this file")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    print(f"machine: {machine()}", flush=True)
    command = shlex.join(["python", "-m", "bench", *argv])
    results: list[Result] = []
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        options: dict[str, Any] = {"quick": args.quick}
        for opt in ("nodes", "pods", "client_procs", "trace"):
            value = getattr(args, opt)
            if value and opt in module.OPTIONS:
                options[opt] = value
        print(f"-- running {name}{' (quick)' if args.quick else ''}", flush=True)
        run = module.run
        load_before = os.getloadavg()[0]
        out = asyncio.run(run(**options)) if asyncio.iscoroutinefunction(run) else run(**options)
        load_after = os.getloadavg()[0]
        for result in out:
            result.command = command
            # Other jobs share the machine: say how busy it was.
            result.figures["load average (1 min) before / after"] = (
                f"{load_before:.1f} / {load_after:.1f}"
            )
            result.print()
            results.append(result)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as f:
                    f.write(result.to_json() + "\n")
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
