"""Rebuild the ONNX graph of every shipped integer model from its integer network (the card's
`.npz`), after a change to how firmware_sim writes the graph (onnx_graph.py, gateway_graph.py).

The integer network is the model; its ONNX graph is derived from it. So a faster graph needs no
retraining: each graph is rewritten and checked against the simulator as `edgesnn export
--quantize` does (validation-region windows and random ones: the gateway graph by class, the
exact graph bit for bit), its test-region metrics are measured again, and the card gets the new
sha256, check and metrics. Metrics that moved are printed: an exact graph must not move any.

    python benchmarks/rebuild_integer_graphs.py [--data ../shared/datasets/cwru]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgesnn.anomaly import AnomalyScorer, detector_metrics, is_anomaly_card
from edgesnn.card import onnx_graph_kind, read_card, write_card
from edgesnn.dataset import load_task
from edgesnn.evaluation import evaluate
from edgesnn.export import CHECK_WINDOWS, MAX_INTEGER_LOSS, card_metrics, onnx_graph_text
from edgesnn.firmware_sim.esvae import IntESVAE
from edgesnn.firmware_sim.network import IntMRASNN
from edgesnn.firmware_sim.onnx_graph import spike_encoding, write_checked
from edgesnn.labels import task_of
from edgesnn.models import shipped_cards
from edgesnn.runtime import Diagnoser
from edgesnn.sensors.cwru import sha256_of


def rebuild(card_path: Path, data: Path) -> tuple[int, int, dict]:
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
    card["quantization"]["onnx_graph"] = onnx_graph_text(card["onnx_check"])
    write_card(card_path, card)  # the new sha256 first: the runtime refuses a graph its card does not name
    test = task.windows("test")
    if detector:
        metrics = detector_metrics(AnomalyScorer(card_path).scores, test, task.classes, card["threshold"])
    else:
        metrics = card_metrics(evaluate(Diagnoser(card_path).logits, test, task.classes))
    moved = {k: (card["metrics"].get(k), v) for k, v in metrics.items() if card["metrics"].get(k) != v}
    if moved and onnx_graph_kind(card) == "exact":
        raise SystemExit(f"{card_path}: the rebuilt exact graph scores differently: {moved}")
    if "test_accuracy" in moved and abs(moved["test_accuracy"][1] - moved["test_accuracy"][0]) > MAX_INTEGER_LOSS:
        raise SystemExit(f"{card_path}: the rebuilt graph moved clean accuracy by more than "
                         f"{100 * MAX_INTEGER_LOSS:.1f} points: {moved['test_accuracy']}")
    card["metrics"] = metrics
    write_card(card_path, card)
    return old_bytes, onnx_path.stat().st_size, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    args = parser.parse_args()
    for path in shipped_cards():
        if "quantization" in read_card(path):
            old, new, moved = rebuild(path, args.data)
            card = read_card(path)
            check = card["onnx_check"]
            same = (f"the simulator's class on {check['real_argmax_agreement']:.2%} of real windows, "
                    if "real_argmax_agreement" in check else "")  # a detector has no class
            print(f"{path.parent.name}/{path.name}: {onnx_graph_kind(card)} graph, {same}"
                  f"{check['bit_exact_windows']}/{check['windows']} bit for bit ({old} -> {new} bytes)")
            for key, (was, now) in moved.items():
                print(f"  {key}: {was} -> {now}")


if __name__ == "__main__":
    main()
