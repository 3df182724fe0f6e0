"""Flower's simulation engine over a partitioned CWRU training region: one fleet per call."""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from edgesnn.errors import EdgesnnError
from edgesnn.fleet import client_app
from edgesnn.fleet.config import FleetConfig
from edgesnn.fleet.server_app import run_fleet


@contextmanager
def _neutral_cwd():
    """Ray puts the driver's working directory first on its workers' import path. Run from a
    source checkout, the checkout's `edgesnn/` folder would then shadow the installed package
    (which maps sensors/, models/, cli/ into it) and every ClientApp would fail to import. The
    engine therefore starts from an empty folder; paths in the config are made absolute first."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="edgesnn-fleet-") as folder:
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(before)


def _absolute(cfg: FleetConfig) -> FleetConfig:
    return replace(cfg, data=str(Path(cfg.data).resolve()),
                   out=str(Path(cfg.out).resolve()) if cfg.out else "",
                   export_dir=str(Path(cfg.export_dir).resolve()) if cfg.export_dir else "")


def simulate(cfg: FleetConfig, progress=None, parallel: int | None = None) -> dict:
    """Run `cfg.rounds` rounds with `cfg.clients` virtual devices; returns run_fleet's result."""
    cfg = _absolute(cfg)
    box: dict = {}
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        box["result"] = run_fleet(grid, cfg, progress)

    parallel = parallel or max(1, (os.cpu_count() or 1))
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": parallel, "include_dashboard": False, "logging_level": logging.ERROR,
                             "log_to_driver": False}}
    with _neutral_cwd():
        run_simulation(server_app=server, client_app=client_app.app, num_supernodes=cfg.clients,
                       backend_config=backend)
    if "result" not in box:
        raise EdgesnnError("the fleet simulation ended without a result; Flower's log above says why")
    return box["result"]
