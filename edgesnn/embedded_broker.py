"""An MQTT broker inside this process (amqtt, pure Python), bound to loopback only.

For the demo and for machines without a broker: nothing to install beyond the package. It runs
amqtt's asyncio broker on a thread of its own, so the paho clients of the monitor and the
publishers talk to it over a real TCP socket exactly as they would to Mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from edgesnn.errors import EdgesnnError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """`with EmbeddedBroker() as url:` serves mqtt://127.0.0.1:PORT until the block ends."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host, self.port = host, port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="mqtt-broker")
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> str:
        from amqtt.broker import Broker

        # amqtt (and its state machine library) log every connection and transition at INFO
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # only anonymous access on loopback: no $SYS topics, no packet logging
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._thread.start()

        async def start():
            self._broker = Broker(config)
            await self._broker.start()

        try:
            asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=30)
        except Exception as exc:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise EdgesnnError(f"{self.url}: the embedded broker did not start ({exc})") from None
        return self.url

    def stop(self) -> None:
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout=10)
            except Exception:  # noqa: BLE001  (shutting down: nothing left to protect)
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
