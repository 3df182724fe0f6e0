"""The monitor's live terminal view (rich): one row per sensor, refreshed twice a second."""

from __future__ import annotations

import time

from rich.table import Table

from edgesnn.labels import fault_type
from edgesnn.signal import NO_SIGNAL


def sensor_table(monitor, limit: int = 40) -> Table:
    st = monitor.last_status or monitor.status()
    table = Table(title=f"edgesnn monitor - {st['model']} - {st['sensors']} sensors, {st['windows']} windows, "
                        f"{st['dropped']} dropped, {sum(st['rejected'].values())} rejected, "
                        f"{st['journal_unsent']} unsent")
    scored = getattr(monitor, "anomaly", None) is not None
    for col in ("sensor", "state", "last window", "confidence", *(("anomaly score",) if scored else ()),
                "latency (ms)", "age (s)"):
        table.add_column(col, justify="left" if col == "sensor" else "right")
    now = time.time()
    for sensor in sorted(monitor.latest)[:limit]:
        last = monitor.latest[sensor]
        state = monitor.health[sensor].label or "-"
        style = "green" if state == "normal" else ("red" if state != "-" else "")
        table.add_row(sensor, f"[{style}]{state}[/]" if style else state,
                      last["label"] if last["label"] == NO_SIGNAL else f"{last['label']} ({fault_type(last['label'])})",
                      f"{last['confidence']:.2f}",
                      *((f"[red]{last['anomaly_score']:.3g}[/]" if last["anomaly"] else f"{last['anomaly_score']:.3g}",)
                        if scored and "anomaly_score" in last else ("-",) if scored else ()),
                      f"{last['latency_s'] * 1000:.0f}", f"{now - last['t_end']:.1f}")
    if len(monitor.latest) > limit:
        table.caption = f"{len(monitor.latest) - limit} more sensors not shown"
    return table
