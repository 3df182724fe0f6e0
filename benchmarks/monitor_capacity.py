"""How many 12 kHz sensors one `edgesnn monitor` sustains in real time on this machine.

Everything runs here side by side, publishers included: the broker (Mosquitto on 127.0.0.1:1883
by default), publisher processes streaming real CWRU recordings (sensor j plays recording
j mod 37 in a loop, 100 ms frames of contract JSON, QoS 1, in real time), the real
`edgesnn monitor` process with the default model, and a consumer that subscribes to the
diagnoses and measures latency as a plant system would: arrival time minus the time of the
window's last sample (`t_end`).

A level of N sensors is *sustained* when the monitor drops no frame, diagnoses every frame that
was sent, the consumer receives every diagnosis, and the p99 latency is <= 500 ms. Levels run
in increasing order, each with a fresh monitor, until one is not sustained.

`--soak S` instead runs one level (`--sensors`, default 50) for S seconds and samples the
monitor's resident memory: RSS is flat when its maximum after the first minute is within 10 %
of its value at one minute.

    python benchmarks/monitor_capacity.py --levels 50,100,200,300,400,500 --seconds 30
    python benchmarks/monitor_capacity.py --soak 300 --sensors 50

Prints a table, writes JSON and a PNG (default benchmarks/results/monitor_capacity*).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

WARMUP_S = 5.0  # diagnoses of windows ending in the first seconds are not scored
SENSORS_PER_PUBLISHER = 250
P99_LIMIT_MS = 500.0


def publish(data: str, broker: str, root: str, sensors: range, seconds: float, ready, go, result) -> None:
    """One publisher process: `sensors` each replay a real recording, looped, in real time,
    from the moment `go` is set (all publishers start together, after reading the data)."""
    from edgesnn.sensors import cwru
    from edgesnn.sensors.publisher import publish_streams

    recordings = cwru.load(Path(data))
    streams = {f"s{j:04d}": (recordings[j % len(recordings)].signal, 12_000.0) for j in sensors}
    ready.put(True)
    go.wait()
    result.put(publish_streams(streams, broker, root, frame_ms=100.0, speed=1.0, seconds=seconds, loop=True))


class Consumer:
    def __init__(self, host: str, port: int, root: str):
        import paho.mqtt.client as mqtt

        self.latency: list[tuple[float, float]] = []  # (t_end, latency s)
        self.status: dict = {}
        self.root = root
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect(host, port)
        self.client.subscribe([(f"{root}/+/diagnosis", 0), (f"{root}/_monitor/status", 0)])
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, client, userdata, msg):
        now = time.time()
        if msg.topic.endswith("/diagnosis"):
            t_end = json.loads(msg.payload)["t_end"]
            self.latency.append((t_end, now - t_end))
        else:
            self.status = json.loads(msg.payload)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_level(n: int, seconds: float, args, rss_every: float = 0.0) -> dict:
    from edgesnn.broker import parse_broker

    broker = parse_broker(args.broker)
    root = f"edgesnn-bench-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(broker.host, broker.port, root)
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(sys.executable).with_name("edgesnn")
        mon = subprocess.Popen([str(exe), "monitor", "--broker", args.broker, "--root", root,
                                "--journal", f"{tmp}/journal.sqlite", "--duration", str(seconds + 60),
                                "--threads", str(args.threads)] + (["--model", args.model] if args.model else []),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 60
        while not consumer.status.get("online") and time.time() < deadline:
            time.sleep(0.1)
        ctx = multiprocessing.get_context("spawn")
        sent_q, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        shards = [range(i, min(i + SENSORS_PER_PUBLISHER, n)) for i in range(0, n, SENSORS_PER_PUBLISHER)]
        pubs = [ctx.Process(target=publish, args=(args.data, args.broker, root, s, seconds, ready, go, sent_q))
                for s in shards]
        for p in pubs:
            p.start()
        for _ in pubs:
            ready.get(timeout=120)
        cpu0, t0 = cpu_seconds(mon.pid), time.time()
        go.set()
        rss = []
        while any(p.is_alive() for p in pubs):
            if rss_every:
                rss.append((time.time() - t0, rss_mb(mon.pid)))
            time.sleep(rss_every or 0.5)
        sent = sum(sent_q.get(timeout=30) for _ in pubs)
        # the tail: frames still queued, their diagnoses still on the way
        settle = time.time() + 30
        while time.time() < settle and consumer.status.get("frames", 0) < sent:
            time.sleep(0.2)
        time.sleep(1.0)
        cpu = (cpu_seconds(mon.pid) - cpu0) / (time.time() - t0)
        mon.send_signal(signal.SIGTERM)
        out, _ = mon.communicate(timeout=60)
    time.sleep(0.5)
    consumer.close()
    final = json.loads(out)
    scored = np.array([lat for t_end, lat in consumer.latency if t_end >= t0 + WARMUP_S]) * 1000
    row = {
        "sensors": n, "seconds": seconds, "frames_sent": sent, "frames_diagnosed": final["frames"],
        "windows": final["windows"], "diagnoses_received": len(consumer.latency), "dropped": final["dropped"],
        "rejected": sum(final["rejected"].values()), "monitor_cpu_cores": round(cpu, 3),
        "latency_ms_p50": float(np.percentile(scored, 50)) if len(scored) else None,
        "latency_ms_p99": float(np.percentile(scored, 99)) if len(scored) else None,
        "latency_ms_max": float(scored.max()) if len(scored) else None,
    }
    row["sustained"] = bool(
        row["dropped"] == 0 and row["frames_diagnosed"] == sent and row["diagnoses_received"] == row["windows"]
        and row["latency_ms_p99"] is not None and row["latency_ms_p99"] <= P99_LIMIT_MS)
    if rss_every:
        row["rss_mb"] = rss
    return row


def plot_levels(rows: list[dict], path: Path) -> None:
    from edgesnn import plots  # noqa: F401  (selects the headless backend)
    import matplotlib.pyplot as plt

    n = [r["sensors"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(n, [r["latency_ms_p50"] for r in rows], "o-", label="p50")
    a.plot(n, [r["latency_ms_p99"] for r in rows], "o-", label="p99")
    a.axhline(P99_LIMIT_MS, color="grey", ls="--", label="p99 target")
    a.set(xlabel="12 kHz sensors", ylabel="latency, window end to diagnosis (ms)", yscale="log")
    a.legend()
    b.plot(n, [r["monitor_cpu_cores"] for r in rows], "o-")
    b.set(xlabel="12 kHz sensors", ylabel="monitor CPU (cores)", ylim=(0, 2))
    fig.suptitle("edgesnn monitor capacity, publishers and broker on the same 2-core machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_soak(row: dict, path: Path) -> None:
    from edgesnn import plots  # noqa: F401
    import matplotlib.pyplot as plt

    t, mb = zip(*row["rss_mb"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(t, mb)
    ax.set(xlabel="seconds", ylabel="monitor RSS (MiB)", ylim=(0, max(mb) * 1.2),
           title=f"{row['sensors']} sensors for {row['seconds']:.0f} s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/cwru")
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--levels", default="50,100,200,300,400,500", help="sensor counts, in increasing order")
    ap.add_argument("--seconds", type=float, default=30.0, help="streaming time per level")
    ap.add_argument("--soak", type=float, default=0.0, help="instead: one level for this many seconds, RSS sampled")
    ap.add_argument("--sensors", type=int, default=50, help="sensors of the soak run")
    ap.add_argument("--threads", type=int, default=1, help="the monitor's onnxruntime threads")
    ap.add_argument("--model", default=None, help="the monitor's model card (default: the shipped default)")
    ap.add_argument("--out", default="benchmarks/results/monitor_capacity")
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.soak:
        row = run_level(args.sensors, args.soak, args, rss_every=5.0)
        at_minute = next(mb for t, mb in row["rss_mb"] if t >= 60.0)
        later = max(mb for t, mb in row["rss_mb"] if t >= 60.0)
        row["rss_mb_at_60s"], row["rss_mb_max_after_60s"] = at_minute, later
        row["rss_flat"] = later <= 1.10 * at_minute
        console.print(f"{row['sensors']} sensors for {args.soak:.0f} s: RSS {at_minute:.1f} MiB at 60 s, max "
                      f"{later:.1f} MiB after ({(later / at_minute - 1) * 100:+.1f} %), flat: {row['rss_flat']}; "
                      f"p99 {row['latency_ms_p99']:.0f} ms, dropped {row['dropped']}, sustained {row['sustained']}")
        Path(f"{out}_soak.json").write_text(json.dumps(row, indent=1))
        plot_soak(row, Path(f"{out}_soak.png"))
        console.print(f"wrote {out}_soak.json and .png")
        return
    rows = []
    for n in [int(v) for v in args.levels.split(",")]:
        rows.append(run_level(n, args.seconds, args))
        r = rows[-1]
        console.print(f"{n} sensors: p50 {r['latency_ms_p50']:.0f} ms, p99 {r['latency_ms_p99']:.0f} ms, "
                      f"dropped {r['dropped']}, monitor {r['monitor_cpu_cores']:.2f} cores, sustained {r['sustained']}")
        if not r["sustained"]:
            break
    table = Table(title=f"edgesnn monitor capacity ({args.seconds:.0f} s per level, 12 kHz sensors, 100 ms frames, "
                        f"{args.threads} onnxruntime thread(s))")
    cols = ("sensors", "frames_sent", "frames_diagnosed", "windows", "diagnoses_received", "dropped",
            "monitor_cpu_cores", "latency_ms_p50", "latency_ms_p99", "latency_ms_max", "sustained")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for r in rows:
        table.add_row(*[f"{r[c]:.0f}" if c.startswith("latency") else str(r[c]) for c in cols])
    console.print(table)
    best = max((r["sensors"] for r in rows if r["sustained"]), default=0)
    console.print(f"sustained in real time: {best} sensors")
    Path(f"{out}.json").write_text(json.dumps({"sustained_sensors": best, "threads": args.threads, "levels": rows},
                                              indent=1))
    plot_levels(rows, Path(f"{out}.png"))
    console.print(f"wrote {out}.json and .png")


if __name__ == "__main__":
    main()
