"""The Celery broker's Redis transport, with one redis-py client per channel for sending.

kombu's Redis channel builds a new redis-py client for every message it sends
(`Channel._create_client`). Building one costs 0.7 million instructions, about 7 % of an async
submit, and yet a client is only a front for the channel's connection pool, which it asks for a
connection on each command (redis-py's clients may be shared between threads). This channel
keeps the client it built for as long as its pool is the same one: after a fork or a
reconnect the channel has a new pool, and so gets a new client.

Settings use it for a `redis://` broker only: kombu turns TLS on for `rediss://` by the
transport's name, which a transport given by its import path does not have.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _sending_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        build = super()._create_client  # type: ignore[misc]  # not in kombu's type stubs
        if asynchronous:  # the worker's consuming client: kombu keeps that one itself
            return build(asynchronous=True)
        client = self._sending_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sending_client = build()
        return client


class Transport(redis.Transport):
    Channel = Channel
