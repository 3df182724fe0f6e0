"""Prometheus text exposition of the monitor's counters, over the standard library's HTTP server."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def _by_reason(counts: dict) -> list:
    return [(f'{{reason="{r}"}}', n) for r, n in sorted(counts.items())] or [('{reason="none"}', 0)]


def render(status: dict) -> str:
    """Prometheus text format (version 0.0.4) of a monitor status."""
    lines = []

    def metric(name: str, kind: str, help_text: str, samples):
        lines.append(f"# HELP edgesnn_{name} {help_text}")
        lines.append(f"# TYPE edgesnn_{name} {kind}")
        lines.extend(f"edgesnn_{name}{labels} {value}" for labels, value in samples)

    metric("frames_total", "counter", "Waveform frames received.", [("", status["frames"])])
    metric("windows_total", "counter", "Windows diagnosed.", [("", status["windows"])])
    metric("dropped_total", "counter", "Frames dropped by the bounded inbox under overload, by reason.",
           _by_reason(status["dropped_by_reason"]))
    metric("rejected_total", "counter", "Frames rejected, by reason.",
           _by_reason(status["rejected"]))
    metric("reconnects_total", "counter", "Reconnections to the broker.", [("", status["reconnects"])])
    metric("window_restarts_total", "counter", "Windows restarted by a gap in seq or time.", [("", status["restarts"])])
    metric("sensors", "gauge", "Sensors seen.", [("", status["sensors"])])
    metric("inbox_bytes", "gauge", "Payload bytes waiting for the worker.", [("", status["inbox_bytes"])])
    metric("journal_unsent", "gauge", "Diagnoses and states waiting for the broker.", [("", status["journal_unsent"])])
    metric("model_info", "gauge", "The model in use.", [(f'{{model="{status["model"]}"}}', 1)])
    if "anomaly_model" in status:  # monitor --anomaly-model
        metric("anomalies_total", "counter", "Windows whose anomaly score exceeded the threshold.",
               [("", status["anomalies"])])
        metric("anomaly_model_info", "gauge", "The anomaly model in use.", [(f'{{model="{status["anomaly_model"]}"}}', 1)])
    return "\n".join(lines) + "\n"


def serve(port: int, status: Callable[[], dict], host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve GET /metrics on host:port in a daemon thread; returns the server (call shutdown())."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = render(status()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every few seconds are not log lines
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
