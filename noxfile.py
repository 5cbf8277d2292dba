"""Sessions: tests, lint, typecheck, demo, bench.

Run ``nox -s tests`` after ``scripts/setup`` (which installs the Debian
packages the real components need).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PACKAGES = ["beehive", "kecommon", "kubeclient", "cloudcore", "edgecore", "keadm", "devkube"]
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-timeout>=2.3",
    "hypothesis>=6",
    "kubernetes>=29",
]


def _install_packages(session: nox.Session) -> None:
    args: list[str] = []
    for name in PACKAGES:
        args += ["-e", f"packages/{name}"]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, on real containerd, mosquitto, TLS and SQLite."""
    _install_packages(session)
    session.install(*TEST_DEPS)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and the import layering contracts."""
    session.install("ruff>=0.6", "import-linter>=2.0")
    _install_packages(session)
    session.run("ruff", "check", "packages", "tests", "bench", "noxfile.py")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on beehive and kecommon."""
    session.install("mypy>=1.10", "types-PyYAML")
    _install_packages(session)
    session.run("mypy", "packages/beehive/src/beehive", "packages/kecommon/src/kecommon")


@nox.session
def demo(session: nox.Session) -> None:
    """devkube + cloudcore + edgecore on a private containerd, one pod."""
    _install_packages(session)
    session.run("python", "-m", "keadm.devstack", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks; figures go to docs/performance.md."""
    _install_packages(session)
    session.install("pytest>=8", "pytest-asyncio>=0.24")
    session.run("python", "-m", "bench", *session.posargs)
