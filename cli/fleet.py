"""`edgesnn fleet ...`: federated retraining of a fleet on Flower (README "Fleet retraining")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import typer
from rich.console import Console

from edgesnn.cli.extras import need_training_extra
from edgesnn.cli.options import finite
from edgesnn.fleet import AGGREGATION, EXPLORE, LR_END
from edgesnn.errors import EdgesnnError
from edgesnn.folders import check_writable

fleet_app = typer.Typer(no_args_is_help=True, help="Federated retraining of a fleet on Flower, with SFedCA "
                                                   "client selection.")
out = Console(width=200)
err = Console(stderr=True)


def _check(cfg) -> None:
    """Refuse a bad configuration before torch, Flower or the data are started."""
    from edgesnn.fleet.config import SCENARIOS
    from edgesnn.fleet.selection import SelectionSettings

    SelectionSettings(cfg.selection, cfg.clients_per_round, target=cfg.target, explore=cfg.explore,
                      aggregation=cfg.aggregation)  # refuses an unknown rule, target, aggregation, a bad explore
    if cfg.scenario not in SCENARIOS:
        raise EdgesnnError(f"unknown scenario {cfg.scenario!r}; use one of {', '.join(SCENARIOS)}")
    if cfg.clients_per_round > cfg.clients:
        raise EdgesnnError(f"--per-round {cfg.clients_per_round} is more than the fleet's {cfg.clients} clients")
    if not cfg.alpha > 0:
        raise EdgesnnError(f"--alpha must be positive, got {cfg.alpha}")
    if cfg.dp_noise > 0 and cfg.dp_clip <= 0:
        raise EdgesnnError("--dp-noise needs --dp-clip: the noise is scaled to the clipping norm")
    from edgesnn.sensors import cwru

    cwru.entries(Path(cfg.data))  # a --data that holds no recordings


@fleet_app.command("simulate")
def simulate(
    data: Path = typer.Option("../shared/datasets/cwru", help="CWRU folder; its training region is cut into "
                                                              "the clients' local data", envvar="EDGESNN_CWRU"),
    clients: int = typer.Option(20, min=2, help="simulated devices"),
    scenario: str = typer.Option("dirichlet", help="dirichlet (skewed classes) or load (one motor load each)"),
    alpha: float = typer.Option(0.1, callback=finite, help="Dirichlet concentration: small = each device sees few classes"),
    rounds: int = typer.Option(30, min=1),
    selection: str = typer.Option("sfedca", help="sfedca, random (FedAvg) or power_of_choice"),
    per_round: int = typer.Option(4, min=1, help="devices that train and upload a model per round"),
    explore: int = typer.Option(EXPLORE, min=0, help="sfedca: of the devices per round, this many are drawn at "
                                                      "random instead of by credit (see README)"),
    aggregation: str = typer.Option(AGGREGATION, help="how a round's updates are weighted: windows (FedAvg, by "
                                                      "window count) or balanced (each class alike; see README)"),
    local_steps: int = typer.Option(20, min=1, help="optimizer steps of local training per round"),
    lr_end: float = typer.Option(LR_END, callback=finite, min=0.0, max=1.0,
                                 help="the devices' learning rate at the last round, as a share of the first "
                                      "(half cosine between; 1: constant)"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1),
    dp_clip: float = typer.Option(0.0, callback=finite, min=0.0, help="differential privacy: clip each update to this L2 norm on "
                                                     "the device (Flower's fixedclipping_mod); 0: off"),
    dp_noise: float = typer.Option(0.0, callback=finite, min=0.0, max=100.0,
                                   help="with --dp-clip: Gaussian noise multiplier on the aggregate"),
    out_dir: Path = typer.Option(Path("runs/fleet"), "--out", help="folder for history, PNG, checkpoint, model"),
    export: bool = typer.Option(True, help="export the final global model as the default is: integer ONNX + card"),
):
    """Simulate a fleet on Flower's simulation engine: the same ServerApp and ClientApp as a
    deployment, with virtual devices holding skewed shares of the CWRU training region."""
    from edgesnn.fleet.config import FleetConfig

    cfg = FleetConfig(data=str(data), clients=clients, scenario=scenario, alpha=alpha, rounds=rounds,
                      selection=selection, clients_per_round=per_round, explore=explore, aggregation=aggregation,
                      local_steps=local_steps, lr_end=lr_end, seed=seed, dp_clip=dp_clip, dp_noise=dp_noise,
                      out=str(out_dir))
    _check(cfg)
    check_writable(out_dir)
    need_training_extra("torch", "flwr")
    import logging

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from edgesnn import plots
    from edgesnn.dataset import load_task
    from edgesnn.export import export_measured
    from edgesnn.fleet.partition import partition, training_windows
    from edgesnn.fleet.simulate import simulate as run_simulation
    from edgesnn.training import model_from_checkpoint

    task = load_task(data)  # a broken recording fails here, with its own message
    _, y, _, loads = training_windows(task, cfg.hop)
    partition(y, loads, clients, scenario, alpha, seed)  # a fleet that cannot be cut fails here, not in every device
    logging.getLogger("flwr").setLevel(logging.WARNING)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err) as progress:
        bar = progress.add_task(f"fleet {selection}", total=rounds, info="")

        def report(row):
            info = f"test accuracy {row['test_accuracy']:.4f}"
            progress.update(bar, completed=row["round"], info=info)
            if row["round"] and not row["accepted"]:
                err.print(f"round {row['round']}: no update accepted ({row['rejected']}); "
                          f"{row['first_error'] or 'no device answered'}", markup=False, highlight=False)
            if not err.is_terminal:
                err.print(f"round {row['round']}/{rounds} {info}")

        result = run_simulation(cfg, progress=report)
    rows = result["rounds"]  # history.json and fleet.pt are written by the ServerApp itself
    plots.fleet_accuracy({scenario: {selection: [[r["test_accuracy"] for r in rows]]}}, out_dir / "accuracy.png", 0.95)
    moved = sum(sum(r.get("bytes", {}).values()) for r in rows)
    out.print(f"{rounds} rounds, {selection} selection: test-region accuracy {rows[0]['test_accuracy']:.4f} -> "
              f"{rows[-1]['test_accuracy']:.4f}; {moved / 1e6:.1f} MB moved")
    out.print(f"wrote {out_dir}/history.json, accuracy.png, fleet.pt")
    if export:
        ckpt = result["checkpoint"]
        card = export_measured(model_from_checkpoint(ckpt), ckpt, out_dir, cfg.name, task, quantize=True)
        out.print(f"wrote {card.with_suffix('.onnx')} and {card}")


@fleet_app.command("certs")
def certs(
    out_dir: Path = typer.Option(Path("fleet-pki"), "--out", help="folder for ca.crt, server.pem, server.key"),
    host: list[str] = typer.Option(["localhost"], help="the server's host names or IP addresses (repeatable)"),
):
    """Make a private CA and the server's TLS certificate (for a trial; a plant uses its own CA)."""
    need_training_extra("torch", "flwr")
    from edgesnn.fleet.pki import make_certificates

    paths = make_certificates(out_dir, host)
    out.print(f"wrote {paths['ca']} (give it to every device), {paths['cert']} and {paths['key']} (server only)")


@fleet_app.command("keys")
def keys(
    name: str = typer.Argument(..., help="the device's name, e.g. pump3"),
    out_dir: Path = typer.Option(Path("fleet-pki"), "--out", help="folder for <name> and <name>.pub"),
):
    """Make a device's authentication key pair: the private key stays on the device, the server
    registers the .pub."""
    need_training_extra("torch", "flwr")
    from edgesnn.fleet.pki import make_node_key

    private, public = make_node_key(out_dir, name)
    out.print(f"wrote {private} (device only) and {public} (for `edgesnn fleet server --register`)")


@fleet_app.command("server")
def server(
    ca: Path = typer.Option(..., help="CA certificate (PEM)"),
    cert: Path = typer.Option(..., help="the server's TLS certificate (PEM)"),
    key: Path = typer.Option(..., help="the server's TLS private key (PEM)"),
    register: list[Path] = typer.Option(..., help="public key (.pub) of a device allowed to join (repeatable)"),
    port: int = typer.Option(9092, min=1, max=65535, help="port of the SuperLink (devices connect here)"),
    listen: str = typer.Option("0.0.0.0", help="address the SuperLink listens on"),
    data: Path = typer.Option("../shared/datasets/cwru", envvar="EDGESNN_CWRU",
                              help="the server's reference data: its test region scores each round, its "
                                   "training region calibrates the integer export (no device data)"),
    rounds: int = typer.Option(30, min=1),
    selection: str = typer.Option("sfedca", help="sfedca, random (FedAvg) or power_of_choice"),
    per_round: Optional[int] = typer.Option(None, min=1, help="devices that train and upload a model per round "
                                                             "(default: 4, or every device if fewer)"),
    explore: int = typer.Option(EXPLORE, min=0, help="sfedca: of the devices per round, this many are drawn at "
                                                      "random instead of by credit (see README)"),
    aggregation: str = typer.Option(AGGREGATION, help="how a round's updates are weighted: windows (FedAvg, by "
                                                      "window count) or balanced (each class alike; see README)"),
    local_steps: int = typer.Option(20, min=1),
    lr_end: float = typer.Option(LR_END, callback=finite, min=0.0, max=1.0,
                                 help="the devices' learning rate at the last round, as a share of the first"),
    dp_clip: float = typer.Option(0.0, callback=finite, min=0.0, help="differential privacy: clip each update to this L2 norm on "
                                                     "the device (Flower's fixedclipping_mod); 0: off"),
    dp_noise: float = typer.Option(0.0, callback=finite, min=0.0, max=100.0,
                                   help="with --dp-clip: Gaussian noise multiplier on the aggregate"),
    wait_devices: int = typer.Option(0, min=0, help="devices that must be online before round 1 "
                                                    "(default: all registered)"),
    out_dir: Path = typer.Option(Path("runs/fleet-server"), "--out", help="history, checkpoint, SuperLink state"),
    export_dir: Optional[Path] = typer.Option(None, help="export each round's model here (integer ONNX + card); "
                                                         "point `edgesnn monitor --model-dir` at it"),
    timeout: float = typer.Option(3600.0, callback=finite, min=1.0, help="seconds to wait for the devices to come online"),
    round_timeout: float = typer.Option(600.0, callback=finite, min=1.0,
                                        help="seconds a round waits for the selected devices; late ones are "
                                             "counted as not answering"),
):
    """Run a retraining campaign: a TLS SuperLink that admits only registered devices, then the
    fleet's rounds; exports each round's global model for the monitors."""
    from edgesnn.fleet.config import FleetConfig

    work = out_dir.resolve()
    devices = wait_devices or len(register)
    if devices > len(register):
        raise EdgesnnError(f"--wait-devices {devices} is more than the {len(register)} registered device keys")
    per_round = per_round or min(4, devices)
    if per_round > devices:
        raise EdgesnnError(f"--per-round {per_round} is more than the {devices} devices the campaign waits for")
    cfg = FleetConfig(data=str(Path(data).resolve()), clients=devices, rounds=rounds, selection=selection,
                      clients_per_round=per_round, explore=explore, aggregation=aggregation, local_steps=local_steps,
                      lr_end=lr_end, out=str(work), dp_clip=dp_clip, dp_noise=dp_noise, round_timeout=round_timeout,
                      export_dir=str(export_dir.resolve()) if export_dir else "")
    _check(cfg)
    need_training_extra("cryptography")  # Flower's, for the keys and certificates checked next
    from edgesnn.fleet.pki import check_public_key, check_server_tls

    seen: dict[bytes, Path] = {}
    for pub in register:
        key_id = check_public_key(pub)
        if key_id in seen:
            raise EdgesnnError(f"{pub}: the same device key as {seen[key_id]}; register each device once")
        seen[key_id] = pub
    check_server_tls(ca, cert, key)
    check_writable(work)
    if export_dir:
        check_writable(export_dir)
    need_training_extra("torch", "flwr")
    import signal
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from edgesnn.dataset import load_task
    from edgesnn.fleet.deploy import Server

    load_task(data)  # a broken reference recording fails before anything starts
    srv = Server(work, ca, cert, key, port, listen)

    def shutdown(signum, frame):  # SIGTERM as Ctrl-C: the SuperLink is stopped on the way out
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, shutdown)
    try:
        srv.start()
        for pub in register:
            err.print(f"registered {pub.name}: node {srv.register(pub)}", markup=False)
        deadline = time.monotonic() + timeout
        err.print(f"SuperLink on port {port} (TLS); waiting for {devices} devices", markup=False)
        while srv.online() < devices:
            if time.monotonic() > deadline:
                raise EdgesnnError(f"only {srv.online()} of {devices} devices came online within {timeout:.0f} s")
            time.sleep(2)
        run_id = srv.submit(cfg)
        history = work / "history.json"
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err) as progress:
            bar = progress.add_task(f"fleet run {run_id}", total=rounds, info="")
            while not (status := srv.run_status(run_id)).get("status", "").startswith("finished"):
                if srv.proc.poll() is not None:
                    raise EdgesnnError(f"the SuperLink stopped during run {run_id}; see {work / 'superlink.log'}")
                if history.is_file():
                    rows = json.loads(history.read_text() or "{}").get("rounds", [])
                    if rows:
                        progress.update(bar, completed=rows[-1]["round"],
                                        info=f"test accuracy {rows[-1]['test_accuracy']:.4f}")
                time.sleep(2)
        (work / "serverapp.log").write_text(srv.run_log(run_id))
        if status["status"] != "finished:completed":
            detail = " ".join(str(status.get("status-details") or "").split())
            raise EdgesnnError(f"run {run_id} {status['status']}{': ' + detail if detail else ''}; "
                               f"log: {work / 'serverapp.log'}")
        rows = json.loads(history.read_text())["rounds"]
        out.print(f"run {run_id}: {len(rows) - 1} rounds, test-region accuracy {rows[0]['test_accuracy']:.4f} -> "
                  f"{rows[-1]['test_accuracy']:.4f}; wrote {work}/history.json, fleet.pt"
                  + (f"; models in {export_dir}" if export_dir else ""))
    finally:
        srv.stop()


def _superlink_address(address: str) -> None:
    """HOST:PORT, checked here: Flower reports a bad one in a screenful of log."""
    try:  # as parse_broker reads a broker's: an IPv6 host in brackets, [fd00::20]:9092
        parts = urlsplit(f"//{address}")
        ok = bool(parts.hostname) and bool(parts.port) and parts.netloc == address
    except ValueError:  # a port out of range or not a number, an unclosed bracket
        ok = False
    if not ok:
        raise EdgesnnError(f"--superlink {address!r}: give the server as HOST:PORT, e.g. 192.168.1.20:9092 "
                           "or [fd00::20]:9092")


@fleet_app.command("client")
def client(
    superlink: str = typer.Option(..., help="the server's SuperLink, HOST:PORT"),
    ca: Path = typer.Option(..., help="CA certificate (PEM) that signed the server's certificate"),
    key: Path = typer.Option(..., help="this device's private key (from `edgesnn fleet keys`)"),
    data: Path = typer.Option(..., help="this device's recordings (CWRU format); only their training "
                                        "region is used, and nothing of them leaves the device"),
    retries: Optional[int] = typer.Option(None, min=0, help="give up when the server still does not answer "
                                                            "after this many retries (default: keep trying)"),
):
    """Join the fleet as a device: train on local recordings when the server selects it, answer its
    queries with a few firing-rate numbers. Runs until stopped."""
    need_training_extra("torch", "flwr")
    from edgesnn.dataset import load_task
    from edgesnn.fleet.deploy import flower_env, reach_superlink, run_supernode, supernode_command

    from edgesnn.fleet.pki import check_ca, check_private_key

    check_ca(ca)
    check_private_key(key)
    _superlink_address(superlink)
    load_task(data, all_classes=False)  # unreadable recordings fail here, not in a round
    reach_superlink(superlink, ca, retries, err=err)  # and a server that is not there, or not trusted
    cmd = supernode_command(superlink, ca, key, data) + (["--max-retries", str(retries)] if retries is not None else [])
    err.print(f"joining {superlink} with {len(list(data.iterdir()))} files of local recordings", markup=False)
    # Flower keeps installed apps under FLWR_HOME: one per device key, so devices sharing a
    # machine (a test, a gateway with several) do not share it
    code, refused = run_supernode(cmd, flower_env(Path.home() / ".edgesnn" / f"flwr-supernode-{key.name}"))
    if refused:  # TLS was checked above, so what the server turned away is this device's key
        raise EdgesnnError(f"the server at {superlink} did not admit this device: is {key.name}.pub registered "
                           f"there (`edgesnn fleet server --register {key.name}.pub`)?")
    if code:
        raise typer.Exit(code)
