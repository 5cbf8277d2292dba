"""beehive.context: every operation, its queue policy, its timeouts and close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from beehive import (
    Context,
    ContextClosed,
    Message,
    QueueFull,
    SyncTimeout,
    UnknownGroup,
    UnknownModule,
)


def msg(content: object = None, *, resource: str = "default/pod/p") -> Message:
    return Message.new(
        source="test", group="meta", operation="insert", resource=resource, content=content
    )


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``cond()`` holds, polling; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
def ctx() -> Context:
    c = Context(queue_size=4)
    c.add_module("edged", "edged")
    c.add_module("meta", "meta")
    c.add_module("twin", "twin")
    c.add_module("bus", "bus")
    c.add_module("meta2", "meta")
    return c


# -- registration ----------------------------------------------------------------


def test_add_module_is_idempotent_and_groups_keep_order(ctx: Context) -> None:
    ctx.add_module("meta", "meta")
    assert ctx.group_members("meta") == ["meta", "meta2"]
    assert ctx.modules() == ["edged", "meta", "twin", "bus", "meta2"]


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Context(queue_size=0)


async def test_remove_module_wakes_its_receiver(ctx: Context) -> None:
    receiver = asyncio.create_task(ctx.receive("twin"))
    await asyncio.sleep(0)
    ctx.remove_module("twin")
    with pytest.raises(ContextClosed):
        await asyncio.wait_for(receiver, 2)
    assert "twin" not in ctx.modules()
    assert ctx.group_members("twin") == []
    with pytest.raises(UnknownModule):
        await ctx.send("twin", msg())


# -- send / receive ------------------------------------------------------------------


async def test_send_then_receive_in_order(ctx: Context) -> None:
    sent = [msg(i) for i in range(3)]
    for m in sent:
        await ctx.send("edged", m)
    got = [await ctx.receive("edged") for _ in sent]
    assert got == sent
    assert got[0] is sent[0]  # send does not copy
    assert ctx.stats["sent"] == 3 and ctx.stats["received"] == 3


async def test_receive_waits_for_a_message(ctx: Context) -> None:
    receiver = asyncio.create_task(ctx.receive("edged"))
    await asyncio.sleep(0.01)
    assert not receiver.done()
    m = msg("late")
    await ctx.send("edged", m)
    assert await asyncio.wait_for(receiver, 2) is m


async def test_send_to_unknown_module(ctx: Context) -> None:
    with pytest.raises(UnknownModule):
        await ctx.send("nobody", msg())
    with pytest.raises(UnknownModule):
        ctx.try_send("nobody", msg())
    with pytest.raises(UnknownModule):
        await ctx.receive("nobody")
    with pytest.raises(UnknownModule):
        await ctx.send_sync("nobody", msg(), 1)


async def test_try_send_raises_queue_full_at_once(ctx: Context) -> None:
    for i in range(4):
        ctx.try_send("edged", msg(i))
    assert ctx.queue_depth("edged") == 4
    with pytest.raises(QueueFull):
        ctx.try_send("edged", msg(99))
    assert ctx.stats["queue_full"] == 1
    assert [(await ctx.receive("edged")).content for _ in range(4)] == [0, 1, 2, 3]


async def test_send_blocks_while_full_then_proceeds(ctx: Context) -> None:
    for i in range(4):
        await ctx.send("edged", msg(i))
    sender = asyncio.create_task(ctx.send("edged", msg(4)))
    await asyncio.sleep(0.02)
    assert not sender.done()  # back-pressure: blocked, not dropped
    assert (await ctx.receive("edged")).content == 0
    await asyncio.wait_for(sender, 2)
    assert [(await ctx.receive("edged")).content for _ in range(4)] == [1, 2, 3, 4]


async def test_send_with_timeout_gives_up_with_queue_full(ctx: Context) -> None:
    for i in range(4):
        ctx.try_send("edged", msg(i))
    with pytest.raises(QueueFull):
        await ctx.send("edged", msg(), timeout=0.05)
    assert ctx.stats["queue_full"] == 1
    assert ctx.queue_depth("edged") == 4  # the refused message was not queued


async def test_cancelled_sender_passes_the_free_slot_on(ctx: Context) -> None:
    for i in range(4):
        ctx.try_send("edged", msg(i))
    first = asyncio.create_task(ctx.send("edged", msg("first")))
    second = asyncio.create_task(ctx.send("edged", msg("second")))
    await asyncio.sleep(0.01)
    await ctx.receive("edged")  # room for one: wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, 2)
    assert first.cancelled()
    contents = [(await ctx.receive("edged")).content for _ in range(4)]
    assert contents == [1, 2, 3, "second"]


async def test_cancelled_receiver_does_not_lose_a_message(ctx: Context) -> None:
    first = asyncio.create_task(ctx.receive("edged"))
    second = asyncio.create_task(ctx.receive("edged"))
    await asyncio.sleep(0.01)
    m = msg("only")
    ctx.try_send("edged", m)  # wakes `first`...
    first.cancel()  # ...cancelled before it runs
    assert await asyncio.wait_for(second, 2) is m


# -- groups ---------------------------------------------------------------------------


async def test_send_to_group_reaches_every_member_with_a_copy(ctx: Context) -> None:
    m = msg({"k": "v"})
    await ctx.send_to_group("meta", m)
    a, b = await ctx.receive("meta"), await ctx.receive("meta2")
    assert a == m and b == m
    assert a is not m and b is not m and a is not b
    a.route.resource = "changed"  # members do not share the route
    assert b.route.resource == m.route.resource
    assert ctx.queue_depth("edged") == 0


async def test_send_to_unknown_group(ctx: Context) -> None:
    with pytest.raises(UnknownGroup):
        await ctx.send_to_group("nogroup", msg())
    with pytest.raises(UnknownGroup):
        await ctx.send_to_group_sync("nogroup", msg(), 1)


# -- send_sync / send_resp ------------------------------------------------------------------


async def responder(ctx: Context, module: str, *, content: object = "OK") -> Message:
    """Receive one request on ``module`` and answer it; return the request."""
    req = await ctx.receive(module)
    assert ctx.send_resp(req.response(content))
    return req


async def test_send_sync_returns_the_response(ctx: Context) -> None:
    task = asyncio.create_task(responder(ctx, "edged", content={"pod": "p"}))
    req = msg()
    resp = await ctx.send_sync("edged", req, timeout=2)
    got = await task
    assert got.header.sync is True  # beehive marks sync requests
    assert resp.parent_id == req.msg_id
    assert resp.content == {"pod": "p"}
    assert resp.operation == "response"
    assert ctx.pending_requests() == 0


async def test_send_sync_times_out(ctx: Context) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(SyncTimeout) as info:
        await ctx.send_sync("edged", msg(), timeout=0.1)
    assert 0.09 <= loop.time() - start < 2
    assert isinstance(info.value, TimeoutError)
    assert ctx.stats["sync_timeout"] == 1
    assert ctx.pending_requests() == 0


async def test_late_response_is_unmatched(ctx: Context) -> None:
    req = msg()
    with pytest.raises(SyncTimeout):
        await ctx.send_sync("edged", req, timeout=0.05)
    late = (await ctx.receive("edged")).response("too late")
    assert ctx.send_resp(late) is False
    assert ctx.stats["unmatched_response"] == 1


async def test_send_resp_without_a_request(ctx: Context) -> None:
    stray = msg().response("OK")
    assert ctx.send_resp(stray) is False
    assert ctx.stats["unmatched_response"] == 1
    no_parent = msg()
    assert ctx.send_resp(no_parent) is False


async def test_only_the_matching_response_completes_a_request(ctx: Context) -> None:
    a, b = msg("a"), msg("b")
    ta = asyncio.create_task(ctx.send_sync("edged", a, timeout=2))
    tb = asyncio.create_task(ctx.send_sync("edged", b, timeout=2))
    await until(lambda: ctx.queue_depth("edged") == 2)
    r1, r2 = await ctx.receive("edged"), await ctx.receive("edged")
    assert ctx.send_resp(r2.response("for b"))
    assert (await asyncio.wait_for(tb, 2)).content == "for b"
    assert not ta.done()
    assert ctx.send_resp(r1.response("for a"))
    assert (await asyncio.wait_for(ta, 2)).content == "for a"


async def test_duplicate_pending_msg_id_is_refused(ctx: Context) -> None:
    req = msg()
    task = asyncio.create_task(ctx.send_sync("edged", req, timeout=2))
    await until(lambda: ctx.pending_requests() == 1)
    with pytest.raises(ValueError):
        await ctx.send_sync("meta", req, timeout=1)
    await responder(ctx, "edged")
    await asyncio.wait_for(task, 2)


async def test_send_sync_needs_a_msg_id(ctx: Context) -> None:
    m = msg()
    m.header.msg_id = ""
    with pytest.raises(ValueError):
        await ctx.send_sync("edged", m, timeout=1)


async def test_send_sync_timeout_covers_a_full_queue(ctx: Context) -> None:
    for i in range(4):
        ctx.try_send("edged", msg(i))
    with pytest.raises(SyncTimeout):
        await ctx.send_sync("edged", msg(), timeout=0.05)
    assert ctx.queue_depth("edged") == 4


# -- send_to_group_sync ------------------------------------------------------------------------


async def test_send_to_group_sync_collects_one_answer_per_member(ctx: Context) -> None:
    t1 = asyncio.create_task(responder(ctx, "meta", content="one"))
    t2 = asyncio.create_task(responder(ctx, "meta2", content="two"))
    req = msg()
    answers = await ctx.send_to_group_sync("meta", req, timeout=2)
    assert sorted(a.content for a in answers) == ["one", "two"]
    assert all(a.parent_id == req.msg_id for a in answers)
    r1, r2 = await t1, await t2
    assert r1.msg_id == r2.msg_id == req.msg_id  # copies of one request
    assert ctx.pending_requests() == 0


async def test_send_to_group_sync_with_a_partial_answer_times_out(ctx: Context) -> None:
    answered = asyncio.create_task(responder(ctx, "meta", content="one"))
    with pytest.raises(SyncTimeout, match="1/2 answered"):
        await ctx.send_to_group_sync("meta", msg(), timeout=0.1)
    await answered
    # the silent member's late answer is unmatched
    late = await ctx.receive("meta2")
    assert ctx.send_resp(late.response("two")) is False
    assert ctx.pending_requests() == 0


# -- close -----------------------------------------------------------------------------------------


async def test_close_fails_pending_requests(ctx: Context) -> None:
    single = asyncio.create_task(ctx.send_sync("edged", msg(), timeout=30))
    group = asyncio.create_task(ctx.send_to_group_sync("meta", msg(), timeout=30))
    await until(lambda: ctx.pending_requests() == 2)
    ctx.close()
    for task in (single, group):
        with pytest.raises(ContextClosed):
            await asyncio.wait_for(task, 2)
    assert ctx.pending_requests() == 0
    assert ctx.closed


async def test_close_wakes_receivers_and_blocked_senders(ctx: Context) -> None:
    receivers = [asyncio.create_task(ctx.receive("twin")) for _ in range(2)]
    for i in range(4):
        ctx.try_send("edged", msg(i))
    blocked = asyncio.create_task(ctx.send("edged", msg("blocked")))
    await asyncio.sleep(0.01)
    ctx.close()
    for task in [*receivers, blocked]:
        with pytest.raises(ContextClosed):
            await asyncio.wait_for(task, 2)


async def test_nothing_is_delivered_after_close(ctx: Context) -> None:
    ctx.try_send("edged", msg("queued"))
    ctx.close()
    ctx.close()  # idempotent
    with pytest.raises(ContextClosed):
        await ctx.receive("edged")
    with pytest.raises(ContextClosed):
        await ctx.send("edged", msg())
    with pytest.raises(ContextClosed):
        ctx.try_send("edged", msg())
    with pytest.raises(ContextClosed):
        await ctx.send_to_group("meta", msg())
    with pytest.raises(ContextClosed):
        await ctx.send_sync("edged", msg(), timeout=1)
    assert ctx.send_resp(msg().response("x")) is False
