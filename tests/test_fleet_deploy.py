"""A fleet deployment on loopback: TLS with a CA the test makes, only registered devices join,
two rounds of the real ServerApp and ClientApp on Flower's deployment engine, each round's
model exported for the monitors."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from conftest import run_cli  # noqa: E402
from edgesnn.fleet.deploy import free_port  # noqa: E402
from edgesnn.fleet.pki import make_certificates, make_node_key  # noqa: E402

EXE = str(Path(sys.executable).with_name("edgesnn"))


def device_folder(folder: Path, cwru_dir: Path, patterns) -> Path:
    """A device's own recordings: links to a few CWRU files (never a copy of the data)."""
    folder.mkdir()
    for pattern in patterns:
        for f in cwru_dir.glob(pattern):
            (folder / f.name).symlink_to(f)
    return folder


def start(args, log: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(home)}  # device state (Flower's FLWR_HOME) under the test's folder
    return subprocess.Popen([EXE, *map(str, args)], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """The process and whatever it started (Flower's SuperExec and app processes)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def refused(args, log: Path, home: Path) -> tuple[int, str]:
    """Exit code and output of a device that should be turned away (its helper processes,
    which may outlive it, are stopped with it)."""
    proc = start(args, log, home)
    try:
        rc = proc.wait(120)
    finally:
        stop(proc)
    return rc, log.read_text()


def test_tls_deployment_admits_registered_devices_and_exports_each_round(cwru_dir, tmp_path):
    pki = tmp_path / "pki"
    make_certificates(pki, ["localhost"])  # what `edgesnn fleet certs` and `fleet keys` write (tested below)
    for name in ("dev0", "dev1", "rogue"):
        make_node_key(pki, name)
    other_ca = tmp_path / "other-ca"
    make_certificates(other_ca, ["localhost"])
    d0 = device_folder(tmp_path / "d0", cwru_dir, ["12k_Drive_End_B0*_1_*.mat", "12k_Drive_End_IR0*_1_*.mat",
                                                   "normal*"])
    d1 = device_folder(tmp_path / "d1", cwru_dir, ["12k_Drive_End_OR0*_1_*.mat", "12k_Drive_End_B0*_2_*.mat"])
    port = free_port()
    superlink = f"127.0.0.1:{port}"
    models = tmp_path / "models"
    procs = []
    try:
        server = start(["fleet", "server", "--ca", pki / "ca.crt", "--cert", pki / "server.pem",
                        "--key", pki / "server.key", "--register", pki / "dev0.pub", "--register", pki / "dev1.pub",
                        "--port", port, "--listen", "127.0.0.1", "--data", cwru_dir, "--rounds", 2,
                        "--per-round", 2, "--local-steps", 3, "--out", tmp_path / "server",
                        "--export-dir", models, "--timeout", 300], tmp_path / "server.log", tmp_path)
        procs.append(server)
        log = tmp_path / "server.log"
        deadline = time.time() + 120
        while "waiting for 2 devices" not in log.read_text() and time.time() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.5)
        # an unregistered key and a server certificate from another CA are refused
        rc, text = refused(["fleet", "client", "--superlink", superlink, "--ca", pki / "ca.crt", "--key", pki / "rogue",
                            "--data", d0, "--retries", 1], tmp_path / "rogue.log", tmp_path)
        last = text.strip().splitlines()[-1]
        assert rc == 2 and last.startswith(f"error: the server at {superlink} did not admit this device: is rogue.pub"), text
        rc, text = refused(["fleet", "client", "--superlink", superlink, "--ca", other_ca / "ca.crt",
                            "--key", pki / "dev0", "--data", d0, "--retries", 1], tmp_path / "wrong-ca.log", tmp_path)
        assert rc == 2 and len(text.strip().splitlines()) == 1 and "is not trusted with" in text, text
        for name, data in (("dev0", d0), ("dev1", d1)):
            procs.append(start(["fleet", "client", "--superlink", superlink, "--ca", pki / "ca.crt",
                                "--key", pki / name, "--data", data], tmp_path / f"{name}.log", tmp_path))
        assert server.wait(300) == 0, log.read_text()[-3000:]
    finally:
        for p in reversed(procs):
            stop(p)
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert [r["round"] for r in history] == [0, 1, 2]
    for row in history[1:]:
        assert sorted(row["selected"]) == ["dev0", "dev1"]  # devices go by their key names
        assert row["accepted"] == 2 and row["rejected"] == {}
        card = json.loads(Path(row["exported"]).read_text())
        assert card["quantization"] and card["fleet"]["selection"] == "sfedca"
        assert row["exported_graph"] == card["onnx_check"]["graph"].split(":")[0] in ("gateway", "exact")
        assert 0.0 <= card["metrics"]["test_accuracy"] <= 1.0
    assert sorted(p.name for p in models.glob("*.json")) == ["mra-snn-fleet-int8-r0001.json",
                                                             "mra-snn-fleet-int8-r0002.json"]


def test_certs_and_keys_write_all_their_files_or_none(tmp_path):
    """An existing file refuses the whole set before anything is written: no CA certificate
    whose key was thrown away, no private key beside another key's .pub."""
    from edgesnn.errors import EdgesnnError

    (tmp_path / "server.pem").write_text("someone's certificate")
    with pytest.raises(EdgesnnError, match="server.pem: already exists"):
        make_certificates(tmp_path, ["localhost"])
    (tmp_path / "pump3.pub").write_text("someone's key")
    with pytest.raises(EdgesnnError, match="pump3.pub: already exists"):
        make_node_key(tmp_path, "pump3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pump3.pub", "server.pem"]
    assert (tmp_path / "server.pem").read_text() == "someone's certificate"
    # a host name longer than a certificate's common name may be (64) is still a valid name
    long_host = "a" * 60 + ".example.com"
    paths = make_certificates(tmp_path / "long", [long_host])
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
    assert long_host in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)


def test_server_and_client_refuse_bad_tls_files_and_addresses_before_starting(tmp_path, cwru_dir):
    """Checked up front, in one line each: before, a CA that did not sign the server's
    certificate or a busy port showed only as a SuperLink that never answered, and a device's
    wrong key or address as a screen of Flower's log."""
    import socket

    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        make_certificates(folder, ["localhost"])
    make_node_key(a, "dev0")
    (a / "copy.pub").write_bytes((a / "dev0.pub").read_bytes())
    server = ["fleet", "server", "--register", a / "dev0.pub", "--out", tmp_path / "srv", "--data", cwru_dir]
    tls = ["--ca", a / "ca.crt", "--cert", a / "server.pem", "--key", a / "server.key"]
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        cases = [
            (["--ca", b / "ca.crt", "--cert", a / "server.pem", "--key", a / "server.key"], "server.pem: not signed by the CA"),
            (["--ca", a, "--cert", a / "server.pem", "--key", a / "server.key"], f"{a}: a folder, not a CA certificate"),
            (["--ca", a / "ca.crt", "--cert", a / "server.pem", "--key", b / "server.key"], "server.key: not the private key of"),
            (tls + ["--register", a / "copy.pub"], "copy.pub: the same device key as"),
            (tls + ["--port", busy.getsockname()[1]], "cannot listen there"),
            (tls + ["--per-round", 3], "--per-round 3 is more than the 1 devices"),
        ]
        for args, says in cases:
            r = run_cli(*server, *args, timeout=120)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 2 and len(lines) == 1 and says in lines[0], r.stderr
            assert not (tmp_path / "srv" / "flwr-cli").exists(), says  # a refused campaign leaves no CLI config
    client = ["fleet", "client", "--ca", a / "ca.crt", "--data", cwru_dir, "--retries", 0]
    with socket.socket() as plain:  # something that is not a TLS server: answers, then hangs up
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        threading.Thread(target=lambda: [c.close() for c, _ in iter(plain.accept, None)], daemon=True).start()
        for args, says in (
                (["--key", a / "dev0.pub", "--superlink", "127.0.0.1:9092"], "not an OpenSSH private key"),
                (["--key", a, "--superlink", "127.0.0.1:9092"], f"{a}: a folder, not a device key"),
                (["--key", "/dev/null", "--superlink", "127.0.0.1:9092"], "/dev/null: not a regular file (a device or a pipe), not a device key"),
                (["--key", a / "dev0", "--superlink", "127.0.0.1:99999"], "give the server as HOST:PORT"),
                (["--key", a / "dev0", "--superlink", "[::1:9092"], "give the server as HOST:PORT"),
                (["--key", a / "dev0", "--superlink", f"127.0.0.1:{free_port()}"], "cannot reach the server at 127.0.0.1:"),
                # not retried even without --retries: a wrong server does not become right
                (["--key", a / "dev0", "--superlink", f"127.0.0.1:{plain.getsockname()[1]}", "--retries", 3],
                 "does not speak TLS as a fleet server does")):
            r = run_cli(*client, *args, timeout=120)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 2 and len(lines) == 1 and says in lines[0], r.stderr


def test_a_server_restarted_in_the_same_folder_registers_the_same_devices_again(tmp_path):
    from edgesnn.fleet.deploy import Server

    pki = tmp_path / "pki"
    assert run_cli("fleet", "certs", "--out", pki).returncode == 0
    assert run_cli("fleet", "keys", "dev0", "--out", pki).returncode == 0
    for attempt in range(2):
        srv = Server(tmp_path / "srv", pki / "ca.crt", pki / "server.pem", pki / "server.key", free_port())
        try:
            srv.start()
            assert srv.register(pki / "dev0.pub") > 0
        finally:
            srv.stop()
    assert (tmp_path / "srv" / "superlink.db.previous").is_file()  # the first campaign's state, kept
