"""Flower's `flwr` command line, runnable under the typer this environment resolves to.

flwr declares typer>=0.13 but annotates its `--format` options with typing.Literal, which typer
reads only from 0.19 on; the edge install's MQTT broker (amqtt 0.11) pins typer 0.15. Here
typer learns Literal as a choice list, then flwr's own CLI runs unchanged:

    python -m edgesnn.fleet.flwr_cli supernode register node0.pub fleet
"""

from __future__ import annotations

import sys
import typing


def _teach_typer_literal() -> None:
    import click
    import typer.main

    original = typer.main.get_click_type

    def get_click_type(*, annotation, parameter_info):
        if typing.get_origin(annotation) is typing.Literal:
            return click.Choice([str(a) for a in typing.get_args(annotation)],
                                case_sensitive=parameter_info.case_sensitive)
        return original(annotation=annotation, parameter_info=parameter_info)

    typer.main.get_click_type = get_click_type


def main(argv: list[str] | None = None) -> None:
    _teach_typer_literal()
    from flwr.cli.app import app

    app(args=argv if argv is not None else sys.argv[1:], prog_name="flwr")


if __name__ == "__main__":
    main()
