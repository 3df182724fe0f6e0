"""The monitor and publishers on a broker that requires TLS and a password.

The test makes its own CA and server certificate (openssl) and runs a private Mosquitto with a
TLS listener and a password file on a free loopback port.
"""

import shutil
import subprocess
import time
import uuid

import numpy as np
import pytest

from conftest import MOSQUITTO, free_port, listening, run_cli, wait_for
from edgesnn.errors import EdgesnnError
from edgesnn.monitor import Monitor

pytestmark = pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("mosquitto_passwd")),
                                reason="needs openssl and mosquitto_passwd")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edgesnn test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem", cwd=d)
    # a second CA the broker does not use: a client trusting it must refuse the broker
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
            "-keyout", "other.key", "-out", "other.pem", cwd=d)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "passwd"), "plant", "s3cret"], check=True,
                   capture_output=True)
    port = free_port()
    (d / "mosquitto.conf").write_text(
        # `user root`: run as whoever starts the test (it reads files from the test's private tmp dir)
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d / 'passwd'}\n"
        f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_for(lambda: listening(port), 10), "TLS mosquitto did not start"
    yield d, port
    proc.terminate()
    proc.wait(10)


def test_monitor_over_tls_with_password(tls_broker):
    d, port = tls_broker
    root = f"edgesnn-tls-{uuid.uuid4().hex[:8]}"
    mon = Monitor(f"mqtts://plant:s3cret@127.0.0.1:{port}", root, ca_file=d / "ca.pem")
    try:
        mon.start()
        assert mon.subscribed.wait(10)
        from edgesnn.sensors.publisher import publish_streams

        x = np.random.default_rng(0).standard_normal(3 * 2048).astype(np.float32)
        sent = publish_streams({"fan7": (x, 12000.0)}, f"mqtts://127.0.0.1:{port}", root, frame_ms=2048 / 12,
                               speed=0, tls_and_auth={"ca_file": d / "ca.pem", "username": "plant",
                                                      "password": "s3cret"})
        assert sent == 3
        assert wait_for(lambda: (mon.step(0.05), mon.counters["windows"])[1] == 3, 20, step=lambda: None)
        assert wait_for(lambda: (mon.forward(), mon.journal.count_unsent())[1] == 0, 10)
    finally:
        mon.close()


def test_wrong_password_and_untrusted_broker_are_refused(tls_broker):
    d, port = tls_broker
    wrong = Monitor(f"mqtts://plant:nope@127.0.0.1:{port}", "x", ca_file=d / "ca.pem")
    try:
        wrong.start()
        time.sleep(1.5)
        assert not wrong.subscribed.is_set() and not wrong.client.is_connected()
    finally:
        wrong.close()
    untrusted = Monitor(f"mqtts://plant:s3cret@127.0.0.1:{port}", "x", ca_file=d / "other.pem")
    with pytest.raises(EdgesnnError, match="cannot connect to the broker"):
        untrusted.start()
    r = run_cli("monitor", "--broker", f"mqtts://127.0.0.1:{port}", "--ca-file", d / "other.pem",
                "--username", "plant", "--password", "s3cret", "--journal", d / "j.sqlite", "--duration", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: mqtts://127.0.0.1:{port}: cannot connect")
