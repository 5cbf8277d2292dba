"""beehive.module and beehive.runtime: registry, supervision, restarts, shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest

from beehive import Context, Message, Module, Registry, RestartPolicy, Runtime


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Probe:
    """A module that records what happens to it in a shared journal."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        *,
        group: str = "",
        enabled: bool = True,
        fail_times: int = 0,
        finish: bool = False,
        cleanup_hangs: bool = False,
        release: asyncio.Event | None = None,
    ) -> None:
        self._name = name
        self._group = group or name
        self._enabled = enabled
        self.journal = journal
        self.fail_times = fail_times
        self.finish = finish
        self.cleanup_hangs = cleanup_hangs
        # With `release`, the body ignores cancellation until it is set.
        self.release = release
        self.starts = 0
        self.start_times: list[float] = []
        self.cleanups = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def group(self) -> str:
        return self._group

    def enabled(self, config: Any) -> bool:
        return self._enabled

    async def start(self, ctx: Context) -> None:
        self.starts += 1
        self.start_times.append(time.monotonic())
        self.journal.append(f"start {self.name}")
        if self.starts <= self.fail_times:
            raise RuntimeError(f"{self.name} broke")
        if self.finish:
            return
        if self.release is not None:
            while not self.release.is_set():
                try:
                    await self.release.wait()
                except asyncio.CancelledError:
                    self.journal.append(f"ignored cancel {self.name}")
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.journal.append(f"cancelled {self.name}")
            raise

    async def cleanup(self) -> None:
        self.cleanups += 1
        self.journal.append(f"cleanup {self.name}")
        if self.cleanup_hangs:
            await asyncio.Event().wait()


def registry_of(*modules: Module, restart: RestartPolicy | None = None) -> Registry:
    reg = Registry()
    for m in modules:
        if restart is None:
            reg.register(m)
        else:
            reg.register(m, restart=restart)
    return reg


# -- module protocol and registry -----------------------------------------------------


def test_probe_is_a_module() -> None:
    assert isinstance(Probe("a", []), Module)


def test_registry_refuses_duplicate_names() -> None:
    reg = Registry()
    reg.register(Probe("a", []))
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Probe("a", []))
    assert len(reg) == 1


def test_registry_returns_enabled_and_logs_disabled(caplog: pytest.LogCaptureFixture) -> None:
    journal: list[str] = []
    reg = registry_of(
        Probe("edged", journal), Probe("twin", journal, enabled=False), Probe("meta", journal)
    )
    with caplog.at_level(logging.INFO, logger="beehive.module"):
        chosen = reg.enabled(config=None)
    assert [r.module.name for r in chosen] == ["edged", "meta"]
    disabled = [r.getMessage() for r in caplog.records if "disabled" in r.getMessage()]
    assert disabled == ["module twin (group twin) is disabled"]


def test_enabled_gets_the_config() -> None:
    class ByConfig(Probe):
        def enabled(self, config: Any) -> bool:
            return bool(config["on"])

    reg = registry_of(ByConfig("a", []))
    assert [r.module.name for r in reg.enabled({"on": True})] == ["a"]
    assert reg.enabled({"on": False}) == []


def test_restart_policy_backoff_and_limits() -> None:
    never = RestartPolicy()
    assert not never.allows(1)
    p = RestartPolicy(mode="on-failure", initial_backoff=1, max_backoff=5, max_restarts=3)
    assert [p.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert [p.allows(n) for n in range(1, 5)] == [True, True, True, False]
    assert RestartPolicy(mode="on-failure").allows(10_000)


# -- runtime ---------------------------------------------------------------------------


async def run_until(runtime: Runtime, cond: Callable[[], bool]) -> int:
    task = asyncio.create_task(runtime.run(handle_signals=False))
    await until(cond)
    runtime.request_stop()
    return await asyncio.wait_for(task, 10)


async def test_starts_enabled_modules_and_stops_in_reverse_order() -> None:
    journal: list[str] = []
    a, b, c = Probe("a", journal), Probe("b", journal, enabled=False), Probe("c", journal)
    runtime = Runtime(registry_of(a, b, c), shutdown_timeout=5)
    code = await run_until(runtime, lambda: a.starts == 1 and c.starts == 1)
    assert code == 0
    assert b.starts == 0 and b.cleanups == 0
    assert journal == [
        "start a",
        "start c",
        "cleanup c",
        "cancelled c",
        "cleanup a",
        "cancelled a",
    ]
    assert runtime.context.closed


async def test_modules_talk_through_the_context_in_any_registration_order() -> None:
    got: list[Message] = []

    class Sender(Probe):
        async def start(self, ctx: Context) -> None:
            # "receiver" is registered after us; its queue must exist already.
            await ctx.send(
                "receiver",
                Message.new(
                    source="s", group="g", operation="insert", resource="r", content="hello"
                ),
            )
            await super().start(ctx)

    class Receiver(Probe):
        async def start(self, ctx: Context) -> None:
            got.append(await ctx.receive("receiver"))
            await super().start(ctx)

    journal: list[str] = []
    runtime = Runtime(registry_of(Sender("sender", journal), Receiver("receiver", journal)))
    assert await run_until(runtime, lambda: bool(got)) == 0
    assert got[0].content == "hello"


async def test_a_module_that_finishes_does_not_stop_the_others() -> None:
    journal: list[str] = []
    done, alive = Probe("done", journal, finish=True), Probe("alive", journal)
    runtime = Runtime(registry_of(done, alive))
    task = asyncio.create_task(runtime.run(handle_signals=False))
    await until(lambda: done.starts == 1 and alive.starts == 1)
    await until(lambda: runtime.running_modules() == ["alive"])
    assert not task.done()
    runtime.request_stop()
    assert await asyncio.wait_for(task, 5) == 0


async def test_crash_with_policy_never_stops_the_process_with_exit_code_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal: list[str] = []
    ok, bad = Probe("ok", journal), Probe("bad", journal, fail_times=1)
    runtime = Runtime(registry_of(ok, bad), shutdown_timeout=5)
    with caplog.at_level(logging.ERROR, logger="beehive.runtime"):
        code = await asyncio.wait_for(runtime.run(handle_signals=False), 10)
    assert code == 1
    assert runtime.failed_module == "bad"
    assert bad.starts == 1  # never restarted
    assert ok.cleanups == 1 and "cancelled ok" in journal
    failure = [r for r in caplog.records if "bad failed" in r.getMessage()]
    assert failure and failure[0].exc_info is not None  # the traceback is logged


async def test_on_failure_restarts_with_backoff() -> None:
    journal: list[str] = []
    flaky = Probe("flaky", journal, fail_times=3)
    policy = RestartPolicy(mode="on-failure", initial_backoff=0.05, max_backoff=0.1)
    runtime = Runtime(registry_of(flaky, restart=policy))
    code = await run_until(runtime, lambda: flaky.starts == 4)
    assert code == 0  # recovered
    assert runtime.failed_module is None
    gaps = [b - a for a, b in zip(flaky.start_times, flaky.start_times[1:], strict=False)]
    # back-off 0.05, 0.1, then capped at 0.1
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.095
    # each failed run is cleaned up before the restart
    assert journal[:4] == ["start flaky", "cleanup flaky", "start flaky", "cleanup flaky"]


async def test_on_failure_gives_up_after_max_restarts() -> None:
    journal: list[str] = []
    broken = Probe("broken", journal, fail_times=100)
    other = Probe("other", journal)
    policy = RestartPolicy(mode="on-failure", initial_backoff=0.01, max_restarts=2)
    reg = Registry()
    reg.register(other)
    reg.register(broken, restart=policy)
    runtime = Runtime(reg, shutdown_timeout=5)
    code = await asyncio.wait_for(runtime.run(handle_signals=False), 10)
    assert code == 1
    assert broken.starts == 3  # the first run and two restarts
    assert runtime.failed_module == "broken"
    assert other.cleanups == 1


async def test_a_hanging_cleanup_does_not_hang_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal: list[str] = []
    a, stuck = Probe("a", journal), Probe("stuck", journal, cleanup_hangs=True)
    runtime = Runtime(registry_of(a, stuck), shutdown_timeout=0.3)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(runtime.run(handle_signals=False))
    await until(lambda: a.starts == 1 and stuck.starts == 1)
    began = loop.time()
    with caplog.at_level(logging.ERROR, logger="beehive.runtime"):
        runtime.request_stop()
        assert await asyncio.wait_for(task, 5) == 0
    assert loop.time() - began < 2
    assert any("cleanup of module stuck timed out" in r.getMessage() for r in caplog.records)
    assert "cleanup a" in journal  # the deadline is shared, but a still got its turn


async def test_a_module_that_ignores_cancellation_does_not_hang_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal: list[str] = []
    release = asyncio.Event()
    a, rogue = Probe("a", journal), Probe("rogue", journal, release=release)
    runtime = Runtime(registry_of(a, rogue), shutdown_timeout=0.3)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(runtime.run(handle_signals=False))
    await until(lambda: rogue.starts == 1 and a.starts == 1)
    began = loop.time()
    with caplog.at_level(logging.ERROR, logger="beehive.runtime"):
        runtime.request_stop()
        assert await asyncio.wait_for(task, 5) == 0
    assert loop.time() - began < 2
    assert "ignored cancel rogue" in journal
    assert "cancelled a" in journal  # the next module was still stopped
    assert runtime.stragglers == ["rogue"]
    assert any("rogue did not stop" in r.getMessage() for r in caplog.records)
    release.set()
    await until(lambda: runtime.stragglers == [])


async def test_stop_during_backoff_stops_promptly() -> None:
    journal: list[str] = []
    flaky = Probe("flaky", journal, fail_times=100)
    policy = RestartPolicy(mode="on-failure", initial_backoff=30)
    runtime = Runtime(registry_of(flaky, restart=policy), shutdown_timeout=5)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(runtime.run(handle_signals=False))
    await until(lambda: flaky.starts == 1 and flaky.cleanups == 1)
    began = loop.time()
    runtime.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert loop.time() - began < 2
    assert flaky.starts == 1


# -- as a process ------------------------------------------------------------------------

PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from beehive import Registry, RestartPolicy, Runtime
    from beehive.runtime import run_process

    mode = sys.argv[1]

    class M:
        def __init__(self, name, fail=False, rogue=False):
            self.name, self.group, self.fail, self.rogue = name, name, fail, rogue
        def enabled(self, config):
            return True
        async def start(self, ctx):
            print("started", self.name, flush=True)
            if self.fail:
                await asyncio.sleep(0.05)
                raise RuntimeError("boom")
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if not self.rogue:
                        raise
        async def cleanup(self):
            print("cleanup", self.name, flush=True)

    reg = Registry()
    reg.register(M("first"))
    reg.register(M("second", fail=mode == "fail", rogue=mode == "rogue"))
    reg.register(M("third"))
    sys.exit(run_process(Runtime(reg, shutdown_timeout=0.5)))
    """
)


def start_process(mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.Popen(
        [sys.executable, "-c", PROCESS, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_lines(proc: subprocess.Popen[str], count: int) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < count:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    return lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_process_cleanly(sig: signal.Signals) -> None:
    proc = start_process("ok")
    try:
        assert wait_for_lines(proc, 3) == ["started first", "started second", "started third"]
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split("\n")[:3] == ["cleanup third", "cleanup second", "cleanup first"]


def test_a_crashed_module_exits_the_process_with_1() -> None:
    proc = start_process("fail")
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "boom" in err  # the traceback is logged
    assert out.index("cleanup third") < out.index("cleanup first")


def test_a_rogue_module_does_not_keep_the_process_alive() -> None:
    proc = start_process("rogue")
    try:
        assert len(wait_for_lines(proc, 3)) == 3
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - began < 10
    assert "cleanup first" in out
