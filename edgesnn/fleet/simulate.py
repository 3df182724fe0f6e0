"""Flower's simulation engine over a partitioned CWRU training region: one fleet per call."""

from __future__ import annotations

import logging
import os

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from edgesnn.fleet import client_app
from edgesnn.fleet.server_app import FleetConfig, run_fleet


def simulate(cfg: FleetConfig, progress=None, parallel: int | None = None) -> dict:
    """Run `cfg.rounds` rounds with `cfg.clients` virtual devices; returns run_fleet's result."""
    box: dict = {}
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        box["result"] = run_fleet(grid, cfg, progress)

    parallel = parallel or max(1, (os.cpu_count() or 1))
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": parallel, "include_dashboard": False, "logging_level": logging.ERROR,
                             "log_to_driver": False}}
    run_simulation(server_app=server, client_app=client_app.app, num_supernodes=cfg.clients,
                   backend_config=backend)
    if "result" not in box:
        raise RuntimeError("the fleet simulation ended without a result; see the log above")
    return box["result"]
