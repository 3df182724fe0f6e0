"""Connecting to an MQTT broker: URL parsing, credentials and TLS, shared by monitor and publishers."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from edgesnn.errors import EdgesnnError
from edgesnn.folders import require_file


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:  # never shows the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def check_root(root: str) -> str:
    """A topic root (CONTRACTS section 3) is one or more plain topic levels: MQTT wildcards or
    empty levels in it would subscribe to, or publish under, other topics than meant. A leading
    / is kept: in MQTT /plant1 is another topic than plant1, and sensors that publish under
    /plant1 must be heard; a trailing / is dropped."""
    plain = root.rstrip("/")
    levels = plain.removeprefix("/").split("/")
    if any(not level or "+" in level or "#" in level for level in levels) or root.startswith("$"):
        raise EdgesnnError(f"topic root {root!r}: give plain topic levels, e.g. plant1/edgesnn (no +, #, "
                           "empty levels or leading $)")
    return plain


def parse_broker(url: str) -> Broker:
    """mqtt://[user[:password]@]HOST[:PORT] or mqtts://... (TLS, default port 8883)."""
    try:
        parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    except ValueError as exc:  # an IPv6 address without its closing bracket
        raise EdgesnnError(f"{url}: not a broker URL ({exc})") from None
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise EdgesnnError(f"{url}: use mqtt://HOST:PORT or mqtts://HOST:PORT")
    if not parsed.hostname:
        raise EdgesnnError(f"{url}: no broker host")
    tls = parsed.scheme == "mqtts"
    try:
        port = parsed.port or (8883 if tls else 1883)
    except ValueError:
        raise EdgesnnError(f"{url}: the port is not a number in 1..65535") from None
    return Broker(parsed.hostname, port, tls, parsed.username, parsed.password)


def mqtt_client(broker: Broker, client_id: str = "", ca_file: Path | None = None, cert_file: Path | None = None,
                key_file: Path | None = None, username: str | None = None, password: str | None = None):
    """A paho client (callback API 2) set up for `broker`: credentials, and TLS for mqtts://."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    user = username or broker.username
    if user:
        client.username_pw_set(user, password if password is not None else broker.password)
    if broker.tls:
        for f in (ca_file, cert_file, key_file):
            if f is not None:
                require_file(f, "TLS file")
        try:
            client.tls_set(ca_certs=str(ca_file) if ca_file else None, certfile=str(cert_file) if cert_file else None,
                           keyfile=str(key_file) if key_file else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise EdgesnnError(f"{broker}: TLS set-up failed ({exc})") from None
    elif ca_file or cert_file:
        raise EdgesnnError(f"{broker}: TLS files given for a plain mqtt:// broker; use mqtts://")
    return client


def connect(client, broker: Broker) -> None:
    """Connect and start paho's network thread, which reconnects with backoff by itself."""
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except OSError as exc:  # ssl.SSLError included: a certificate the CA does not vouch for
        raise EdgesnnError(f"{broker}: cannot connect to the broker ({exc})") from None
    client.loop_start()


def disconnect(client) -> None:
    """Say goodbye, then stop paho's network thread. In this order the goodbye wakes the thread
    at once; the other way round, a thread waiting on a broker that stopped answering holds the
    caller for up to a minute (paho's select timeout) before it lets go."""
    client.disconnect()
    client.loop_stop()
