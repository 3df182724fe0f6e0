"""Rebuild the ONNX graph of every shipped integer model from its integer network (the card's
`.npz`), after a change to how firmware_sim/onnx_graph.py writes the graph.

The integer network is the model; its ONNX graph is derived from it. So a faster graph needs no
retraining: each graph is rewritten, proven bit for bit against the simulator (validation-region
windows and random ones, as `edgesnn export --quantize` does), its test-region metrics are
measured again and must equal the card's, and the card gets the new sha256 and check.

    python benchmarks/rebuild_integer_graphs.py [--data ../shared/datasets/cwru]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgesnn.anomaly import AnomalyScorer, detector_metrics, is_anomaly_card
from edgesnn.card import read_card, write_card
from edgesnn.dataset import load_task
from edgesnn.evaluation import evaluate
from edgesnn.export import CHECK_WINDOWS, card_metrics
from edgesnn.firmware_sim.esvae import IntESVAE
from edgesnn.firmware_sim.network import IntMRASNN
from edgesnn.firmware_sim.onnx_graph import spike_encoding, write_checked
from edgesnn.labels import task_of
from edgesnn.models import shipped_cards
from edgesnn.runtime import Diagnoser
from edgesnn.sensors.cwru import sha256_of


def rebuild(card_path: Path, data: Path) -> tuple[int, int]:
    card = read_card(card_path)
    detector = is_anomaly_card(card)  # scored on the windows of every class, normal against faults
    net = (IntESVAE if detector else IntMRASNN).from_card(card_path, card)
    task = load_task(data, "cwru10" if detector else task_of(card["classes"]), card["window"])
    onnx_path = Path(card["_onnx_path"])
    old_bytes = onnx_path.stat().st_size
    card["onnx_check"] = write_checked(net, onnx_path, task.windows("val").x, CHECK_WINDOWS)
    card["onnx_sha256"] = sha256_of(onnx_path)
    if not detector:
        card["quantization"]["spikes"] = spike_encoding(net.encoder_neurons.levels)
    write_card(card_path, card)
    test = task.windows("test")
    if detector:
        metrics = detector_metrics(AnomalyScorer(card_path).scores, test, task.classes, card["threshold"])
    else:
        metrics = card_metrics(evaluate(Diagnoser(card_path).logits, test, task.classes))
    if metrics != card["metrics"]:
        raise SystemExit(f"{card_path}: the rebuilt graph scores differently: {metrics} vs {card['metrics']}")
    return old_bytes, onnx_path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    args = parser.parse_args()
    for path in shipped_cards():
        if "quantization" in read_card(path):
            old, new = rebuild(path, args.data)
            print(f"{path.parent.name}/{path.name}: rebuilt, bit-exact, same metrics ({old} -> {new} bytes)")


if __name__ == "__main__":
    main()
