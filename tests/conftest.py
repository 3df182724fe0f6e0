import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgesnn.embedded_broker import EmbeddedBroker, free_port

REPO = Path(__file__).resolve().parents[1]
CWRU = Path(os.environ.get("EDGESNN_CWRU", REPO.parent / "shared" / "datasets" / "cwru"))


# The files that take longest (real trainings, Flower runs, many command launches), longest
# first. Two workers take whole files in collection order (`--dist loadfile`): started first, the
# long files run side by side and the short ones fill in at the end, so neither worker finishes
# minutes after the other.
LONG_FILES = ["test_cli_errors.py", "test_fleet_deploy.py", "test_fleet.py", "test_pipeline.py",
              "test_quantized.py", "test_packs.py", "test_bench.py", "test_monitor_overload.py", "test_esvae.py"]


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: each file keeps its own order, the rest stay alphabetical


@pytest.fixture(scope="session")
def cwru_dir() -> Path:
    if not (CWRU / "MANIFEST.csv").is_file():
        pytest.skip(f"CWRU data not found at {CWRU} (set EDGESNN_CWRU)")
    return CWRU


def run_cli(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run the installed `edgesnn` console command as a user would."""
    exe = Path(sys.executable).with_name("edgesnn")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def train_tiny(out: Path, data: Path, steps: int = 3, timesteps: int = 1, extra=()) -> Path:
    """A tiny MRA-SNN through `edgesnn train` (seconds of CPU); returns its checkpoint."""
    r = run_cli("train", "--pack", "mra_snn", "--data", data, "--epochs", "2", "--steps", steps,
                "--batch-size", "16", "--timesteps", timesteps, "--out", out, *extra)
    assert r.returncode == 0, r.stderr
    return out / "checkpoint.pt"


def untrained_checkpoint(path: Path, pack: str = "mra_snn", task: str = "cwru10", **extra) -> Path:
    """A checkpoint in train's format (its config as TrainConfig writes it) of an untrained network,
    for refusals that read no weights: no training run, no data read."""
    from dataclasses import asdict

    import torch

    from edgesnn.labels import TASKS
    from edgesnn.registry import create_model, pack_shape
    from edgesnn.training import TrainConfig

    timesteps, bits = pack_shape(pack)
    model = create_model(pack, n_classes=len(TASKS[task]), window=2048, timesteps=timesteps, bits=bits, **extra)
    config = asdict(TrainConfig(pack=pack, task=task, timesteps=timesteps, bits=bits, extra=extra))
    torch.save({"format": "edgesnn-checkpoint/1", "classes": list(TASKS[task]), "state_dict": model.state_dict(),
                "history": [], "config": config}, path)
    return path


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def wait_for(cond, timeout=30.0, step=None):
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        step() if step else time.sleep(0.05)
    return cond()


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_mosquitto(port: int, tmp_path) -> subprocess.Popen:
    """A private Mosquitto on 127.0.0.1:port, which the test may stop and start."""
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: listening(port), 10):
        proc.kill()
        pytest.fail("private mosquitto did not start")
    return proc


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> str:
    """A real broker for integration tests: the Mosquitto on 127.0.0.1:1883 when there is one,
    otherwise a private Mosquitto started here, otherwise the embedded broker."""
    if listening(1883):
        yield "mqtt://127.0.0.1:1883"
    elif Path(MOSQUITTO).exists():
        port = free_port()
        proc = start_mosquitto(port, tmp_path_factory.mktemp("mosquitto"))
        yield f"mqtt://127.0.0.1:{port}"
        proc.terminate()
        proc.wait(10)
    else:
        with EmbeddedBroker() as url:
            yield url


@contextmanager
def running_monitor(broker: str, monitor, duration_s: float = 60):
    """Run `monitor` in a thread; yields a publisher connected to `broker`; stops both after."""
    import threading

    import paho.mqtt.client as mqtt

    from edgesnn.broker import parse_broker

    worker = threading.Thread(target=monitor.run, kwargs={"duration_s": duration_s})
    worker.start()
    try:
        assert monitor.subscribed.wait(10)
        b = parse_broker(broker)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect(b.host, b.port)
        pub.loop_start()
        try:
            yield pub
        finally:
            pub.loop_stop()
            pub.disconnect()
    finally:
        monitor.stop()
        worker.join(30)


def mqtt_listener(url: str, topic: str, on_message):
    """A paho client subscribed to `topic` on the broker at `url` (the subscription granted)."""
    import threading

    import paho.mqtt.client as mqtt

    from edgesnn.broker import parse_broker

    b = parse_broker(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    granted = threading.Event()
    client.on_subscribe = lambda *args: granted.set()
    client.connect(b.host, b.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert granted.wait(10), f"no SUBACK from {url}"
    return client
