"""Client selection for fleet retraining: SFedCA against random (FedAvg) and power-of-choice.

A simulated fleet on Flower's simulation engine: 20 devices cut from the CWRU training region
(Dirichlet alpha = 0.1 over classes, and a split by motor load), 4 devices train per round
whatever the rule. Per-round accuracy on the test region, rounds to reach the target, final
accuracy, bytes moved (model payloads and statistics apart) and the devices' CPU time for
statistics. Prints a table, writes JSON and a PNG.

    python benchmarks/fleet_selection.py --rounds 100 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

TARGET = 0.95


def rounds_to(acc: list[float], target: float) -> float:
    hit = [i for i, a in enumerate(acc) if a >= target]
    return float(hit[0]) if hit else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/cwru")
    ap.add_argument("--scenarios", default="dirichlet,load")
    ap.add_argument("--rules", default="sfedca,random,power_of_choice")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=4)
    ap.add_argument("--local-steps", type=int, default=20)
    ap.add_argument("--credit-weight", type=float, default=1.0)
    ap.add_argument("--target", default="fleet", help="sfedca's class-mix target: fleet or uniform")
    ap.add_argument("--out", default="benchmarks/results/fleet_selection")
    args = ap.parse_args()

    from edgesnn.fleet.server_app import FleetConfig
    from edgesnn.fleet.simulate import simulate
    from edgesnn.plots import fleet_accuracy

    base = FleetConfig(data=args.data, clients=args.clients, rounds=args.rounds, clients_per_round=args.per_round,
                       local_steps=args.local_steps, credit_weight=args.credit_weight, target=args.target)
    runs, curves = [], {}
    for scenario in args.scenarios.split(","):
        for rule in args.rules.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                cfg = replace(base, scenario=scenario, selection=rule, seed=seed)
                rows = simulate(cfg)["rounds"]
                acc = [r["test_accuracy"] for r in rows]
                total = {k: sum(r["bytes"].get(k, 0) for r in rows[1:])
                         for k in ("model_down", "model_up", "stats_down", "stats_up")}
                run = {"scenario": scenario, "rule": rule, "seed": seed, "accuracy": acc,
                       "rounds_to_target": rounds_to(acc, TARGET), "final_accuracy": acc[-1],
                       "bytes": total, "stats_cpu_seconds": sum(r["stats_cpu_seconds"] for r in rows[1:]),
                       "stats_windows": sum(r["stats_windows"] for r in rows[1:]),
                       "rejected": sum(sum(r["rejected"].values()) for r in rows[1:]),
                       "seconds": rows[-1]["seconds"]}
                runs.append(run)
                curves.setdefault(scenario, {}).setdefault(rule, []).append(acc)
                print(f"{scenario:9s} {rule:15s} seed {seed}: rounds to {TARGET:.0%} {run['rounds_to_target']}, "
                      f"final {run['final_accuracy']:.4f}, {run['seconds']:.0f} s", flush=True)

    summary = []
    for scenario, rules in curves.items():
        for rule in rules:
            mine = [r for r in runs if r["scenario"] == scenario and r["rule"] == rule]
            mb = {k: np.mean([r["bytes"][k] for r in mine]) / 1e6 for k in mine[0]["bytes"]}
            summary.append({"scenario": scenario, "rule": rule,
                            "rounds_to_target": [r["rounds_to_target"] for r in mine],
                            "mean_rounds_to_target": float(np.mean([r["rounds_to_target"] for r in mine])),
                            "final_accuracy": float(np.mean([r["final_accuracy"] for r in mine])),
                            "last10_accuracy": float(np.mean([np.mean(r["accuracy"][-10:]) for r in mine])),
                            "mb_models": mb["model_down"] + mb["model_up"], "mb_stats": mb["stats_down"] + mb["stats_up"],
                            "mb_stats_up": mb["stats_up"],
                            "stats_cpu_seconds": float(np.mean([r["stats_cpu_seconds"] for r in mine]))})
    print(f"\n{'scenario':9s} {'selection':15s} {'rounds to 95% (seeds)':>24s} {'mean':>6s} {'final':>7s} "
          f"{'last10':>7s} {'MB models':>9s} {'MB stats':>8s} {'MB stats up':>11s} {'stats CPU s':>11s}")
    for s in summary:
        per = "/".join("-" if np.isinf(v) else str(int(v)) for v in s["rounds_to_target"])
        print(f"{s['scenario']:9s} {s['rule']:15s} {per:>24s} {s['mean_rounds_to_target']:6.1f} "
              f"{s['final_accuracy']:7.4f} {s['last10_accuracy']:7.4f} {s['mb_models']:9.1f} {s['mb_stats']:8.1f} "
              f"{s['mb_stats_up']:11.2f} {s['stats_cpu_seconds']:11.1f}")
    for scenario in curves:
        ours = next(s for s in summary if s["scenario"] == scenario and s["rule"] == "sfedca")
        rnd = next((s for s in summary if s["scenario"] == scenario and s["rule"] == "random"), None)
        if rnd:
            print(f"{scenario}: sfedca / random rounds to {TARGET:.0%} = "
                  f"{ours['mean_rounds_to_target'] / rnd['mean_rounds_to_target']:.2f} (target <= 0.75)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "target": TARGET, "summary": summary,
                                                    "runs": runs}, indent=1, default=float))
    fleet_accuracy(curves, out.with_suffix(".png"), TARGET)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
