"""kombu's Redis transport, made so that no message is lost between the queue and a worker.

kombu's own transport takes a message off its list with BRPOP and only afterwards records it as
unacknowledged (HSET + ZADD in a second round trip). A worker killed between the two, or a
connection that drops while the BRPOP reply is on the wire, loses that message for good.

Here a Lua script takes messages off the lists and records each one as unacknowledged, in kombu's
own format, in one atomic step, and up to the prefetch credit at a time. To wait on an empty
queue the channel blocks in ``BLMOVE key key`` (the list moved onto itself), which wakes up when
a message arrives but takes nothing off. Acknowledgements are buffered and written once per
event-loop tick, so a batch of 64 jobs is acknowledged in one round trip. A worker killed before
that write has its messages redelivered after the visibility timeout, which the store makes a
no-op.

Publishing, the unacknowledged hash, redelivery after the visibility timeout and fanout are all
kombu's, unchanged: producers and consumers on plain kombu share the same queues. Needs Redis 6.2
or newer (BLMOVE). Selected by ``broker_transport`` in :mod:`worker.celery_app` for redis:// and
rediss:// URLs (logs show them as newsclass-redis://); ``global_keyprefix`` is not supported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from time import monotonic, time
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from worker.messages import delivery_tag_of, read_envelope, refusal_envelope

MIN_REDIS = (6, 2)

# KEYS[1] unacked hash, KEYS[2] unacked index, KEYS[3..] the lists in the order to take from.
# ARGV[1] how many messages at most, ARGV[2] the time to record (seconds, as kombu's time()),
# ARGV[3] how many bytes at most (past the first message), so a run of very large messages is
# taken a few at a time. The unacked record is kombu's [message, exchange, routing_key], built
# around the message's own bytes so that the message is stored exactly as it was sent.
FETCH_SCRIPT = """
local limit = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[3]) or math.huge
local out = {}
local taken = 0
local bytes = 0
for i = 3, #KEYS do
  while taken < limit and (taken == 0 or bytes < max_bytes) do
    local item = redis.call('RPOP', KEYS[i])
    if not item then break end
    bytes = bytes + string.len(item)
    local ok, message = pcall(cjson.decode, item)
    if ok and type(message) == 'table' and type(message.properties) == 'table'
        and type(message.properties.delivery_tag) == 'string'
        and message.properties.delivery_tag ~= '' then
      local props = message.properties
      local info = props.delivery_info
      if type(info) ~= 'table' then info = {} end
      local exchange = info.exchange
      local routing_key = info.routing_key
      if exchange == nil then exchange = cjson.null end
      if routing_key == nil then routing_key = cjson.null end
      local tag = tostring(props.delivery_tag)
      redis.call('HSET', KEYS[1], tag,
        '[' .. item .. ',' .. cjson.encode(exchange) .. ',' .. cjson.encode(routing_key) .. ']')
      redis.call('ZADD', KEYS[2], ARGV[2], tag)
    end
    taken = taken + 1
    out[#out + 1] = KEYS[i]
    out[#out + 1] = item
  end
end
return out
"""


class QoS(kombu_redis.QoS):
    """kombu's Redis ack emulation, with acknowledgements written in batches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: list[str] = []

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.channel.recording_by_fetch:
            # The fetch script has recorded it already: only the in-process bookkeeping is left.
            self.channel.appended = True
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        self._acks.append(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def release(self, delivery_tag: str) -> None:
        """Let go of a message without acknowledging it: its unacked record stays in Redis, so it
        returns after the visibility timeout, and it no longer holds this process's prefetch."""
        virtual.QoS.ack(self, delivery_tag)

    def forget(self, delivery_tag: str) -> None:
        """Drop the unacked record of a message delivered without acknowledgement."""
        self._acks.append(delivery_tag)

    def flush_acks(self, client: Any = None) -> None:
        """Write the buffered acknowledgements: two commands in one round trip."""
        if not self._acks:
            return
        tags, self._acks = self._acks, []
        try:
            with self.pipe_or_acquire(client=client) as pipe:
                pipe.zrem(self.unacked_index_key, *tags).hdel(self.unacked_key, *tags).execute()
        except BaseException:
            self._acks[:0] = tags
            raise

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.flush_acks()
        super().reject(delivery_tag, requeue=requeue)

    def restore_unacked(self, client: Any = None) -> None:
        self.flush_acks(client)
        super().restore_unacked(client)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        self.flush_acks()
        super().restore_visible(start=start, num=num, interval=interval)


class Channel(kombu_redis.Channel):
    """Takes messages with the fetch script, waits with BLMOVE; see the module docstring."""

    QoS = QoS
    #: Most messages taken in one round trip (the prefetch credit also bounds it).
    fetch_limit = 256
    #: Largest body a compressed message may inflate to (worker/messages.py: inflate).
    max_inflated_bytes = 64 * 1024 * 1024
    #: Most bytes of messages taken in one round trip (past the first message).
    max_fetch_bytes = 8 * 1024 * 1024
    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "fetch_limit",
        "max_inflated_bytes",
        "max_fetch_bytes",
    )

    recording_by_fetch = False
    appended = False
    _fetch_next = True
    _pending: str | None = None
    _server_checked = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.global_keyprefix:
            raise ValueError("newsclass's Redis transport does not support global_keyprefix")

    def basic_consume(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        if not self._server_checked:
            self._check_server()
        return super().basic_consume(queue, *args, **kwargs)

    def _check_server(self) -> None:
        with self.conn_or_acquire() as client:
            version = str(client.info("server").get("redis_version", "0"))
        parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        if parts < MIN_REDIS:
            raise RuntimeError(
                f"Redis {version} is too old for newsclass: it needs 6.2 or newer (BLMOVE)"
            )
        self._server_checked = True

    def _fetch_keys(self, queues: list[str]) -> list[str]:
        return [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]

    def _credit(self) -> int:
        estimate = self.qos.can_consume_max_estimate()
        if estimate is None:
            return self.fetch_limit
        return max(1, min(self.fetch_limit, estimate))

    def _brpop_start(self, timeout: float | None = None) -> None:
        # The poller has written the buffered acks just before (on_poll_start).
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        if self._fetch_next:
            keys = self._fetch_keys(queues)
            args: list[Any] = [
                "EVAL",
                FETCH_SCRIPT,
                2 + len(keys),
                self.unacked_key,
                self.unacked_index_key,
                *keys,
                self._credit(),
                repr(time()),
                self.max_fetch_bytes,
            ]
            self._pending = "EVAL"
        else:
            # Wake up when the first queue gets a message; the others are looked at after each
            # wait (at most brpop_timeout later), and at once while messages keep coming.
            key = queues[0]
            args = ["BLMOVE", key, key, "RIGHT", "LEFT", timeout or 0]
            self._pending = "BLMOVE"
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]
        self.client.connection.send_command(*args)

    def _brpop_read(self, **options: Any) -> bool:
        pending, self._pending = self._pending, None
        try:
            try:
                reply = self.client.parse_response(
                    self.client.connection, pending or "BLMOVE", **options
                )
            except self.connection_errors:
                # Disconnect so that the next round reconnects.
                self.client.connection.disconnect()
                raise
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()
        if pending != "EVAL":
            # A message arrived, or the wait timed out: take what is there.
            self._fetch_next = True
            if reply is None:
                queues = self._queue_cycle.consume(1)
                if queues:
                    self._queue_cycle.rotate(queues[0])
            raise virtual.Empty()
        if not reply:
            self._fetch_next = False
            raise virtual.Empty()
        self._deliver_fetched(list(_pairs(reply)))
        return True

    def _deliver_fetched(self, fetched: list[tuple[str, str]]) -> None:
        """Hand each message to its consumer; an item that is no readable kombu envelope goes on
        as a refusal (worker/messages.py), which the consumer records and acknowledges. On an
        error, the messages not yet handed over go back to the head of their queue at once
        instead of after the visibility timeout."""
        for index, (key, item) in enumerate(fetched):
            queue = key.rsplit(self.sep, 1)[0]
            message, refusal = read_envelope(
                item, max_inflated=self.max_inflated_bytes, loads=_loads
            )
            if refusal is not None:
                tag = delivery_tag_of(item)
                message = refusal_envelope(refusal, delivery_tag=tag, queue=queue)
            self.recording_by_fetch, self.appended = True, False
            try:
                self.connection._deliver(message, queue)
            except BaseException:
                self._give_back(fetched[index + 1 :])
                raise
            finally:
                self.recording_by_fetch = False
            if not self.appended and (tag := _delivery_tag(message)) is not None:
                # Taken without acknowledgement (no_ack): nothing will ack it.
                self.qos.forget(tag)
            self._queue_cycle.rotate(queue)

    def _give_back(self, fetched: list[tuple[str, str]]) -> None:
        with suppress(Exception), self.conn_or_acquire() as client:
            for _, item in reversed(fetched):
                tag = delivery_tag_of(item)
                if isinstance(tag, str):
                    self.qos.restore_by_tag(tag, client=client, leftmost=True)

    def close(self) -> None:
        with suppress(*self.connection_errors):
            self.qos.flush_acks()
        super().close()


def _pairs(reply: list[Any]) -> Iterator[tuple[str, str]]:
    it = iter(reply)
    for key, item in zip(it, it, strict=True):
        yield bytes_to_str(key), bytes_to_str(item)


def _loads(item: str) -> Any:
    """kombu's loads, whose hook only revives {"__type__": ..., "__value__": ...} objects; plain
    json.loads (the C decoder, no hook) when there are none, which is several times cheaper."""
    return loads(item) if "__type__" in item else json.loads(item)


def _delivery_tag(message: Any) -> str | None:
    try:
        tag = message["properties"]["delivery_tag"]
    except (KeyError, TypeError):
        return None
    return None if tag is None else str(tag)


class MultiChannelPoller(kombu_redis.MultiChannelPoller):
    """Writes the channels' buffered acknowledgements before each poll (once per tick)."""

    def on_poll_start(self) -> None:
        for channel in self._channels:
            with suppress(*channel.connection_errors):
                channel.qos.flush_acks()
        super().on_poll_start()


class Transport(kombu_redis.Transport):
    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = MultiChannelPoller()  # type: ignore[assignment]


# The name under which logs show the broker URL (newsclass-redis://host:port/db).
NAME = "newsclass-redis"
TRANSPORT_ALIASES.setdefault(NAME, f"{__name__}:Transport")
