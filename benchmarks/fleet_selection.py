"""Client selection for fleet retraining: SFedCA against random (FedAvg) and power-of-choice.

A simulated fleet on Flower's simulation engine: 20 devices cut from the CWRU training region
(Dirichlet alpha = 0.1 over classes, and a split by motor load), 4 devices train per round
whatever the rule, and every rule's updates are averaged alike (`--aggregation`: balanced, the
default, or windows: FedAvg's weighting, so `--rules random --aggregation windows` is FedAvg).
Per-round accuracy on the test region; rounds to reach the target (first round at or above it,
and first round at which the mean of the last 5 rounds is: one lucky round does not count
there); final accuracy and the mean of the last 10 rounds; bytes moved (model payloads and
statistics apart) and the devices' CPU time for statistics. Prints a table, writes JSON and a PNG.

    python benchmarks/fleet_selection.py --rounds 100 --seeds 0,1,2
    python benchmarks/fleet_selection.py --summarize benchmarks/results/fleet_selection.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgesnn.fleet import AGGREGATION, EXPLORE, LR_END

TARGET = 0.95
SMOOTH = 5  # rounds in the moving mean of the second convergence measure


def rounds_to(acc: list[float], target: float, smooth: int = 1) -> float:
    """First round whose accuracy (mean of the last `smooth` rounds) reaches `target`."""
    a = np.asarray(acc)
    if smooth > 1:
        a = np.array([a[max(0, i - smooth + 1): i + 1].mean() if i >= smooth - 1 else 0.0 for i in range(len(a))])
    hit = np.flatnonzero(a >= target)
    return float(hit[0]) if hit.size else float("inf")


def run_all(args, partial: Path) -> list[dict]:
    """Every (scenario, rule, seed) run; the runs so far are saved to `partial` after each."""
    from edgesnn.fleet.config import FleetConfig
    from edgesnn.fleet.simulate import simulate

    base = FleetConfig(data=args.data, clients=args.clients, rounds=args.rounds, clients_per_round=args.per_round,
                       local_steps=args.local_steps, credit_weight=args.credit_weight, target=args.target,
                       explore=args.explore, lr_end=args.lr_end, aggregation=args.aggregation)
    runs = []
    for scenario in args.scenarios.split(","):
        for rule in args.rules.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                rows = simulate(replace(base, scenario=scenario, selection=rule, seed=seed))["rounds"]
                label = f"{rule}_explore{args.explore}" if rule == "sfedca" and args.explore else rule
                label += f"_{args.target}" if rule == "sfedca" and args.target != "fleet" else ""
                label += f"_{args.aggregation}" if args.aggregation != "windows" else ""  # FedAvg's: no suffix
                run = {"scenario": scenario, "rule": label, "seed": seed,
                       "accuracy": [r["test_accuracy"] for r in rows],
                       "bytes": {k: sum(r["bytes"].get(k, 0) for r in rows[1:])
                                 for k in ("model_down", "model_up", "stats_down", "stats_up")},
                       "stats_cpu_seconds": sum(r["stats_cpu_seconds"] for r in rows[1:]),
                       "stats_windows": sum(r["stats_windows"] for r in rows[1:]),
                       "rejected": sum(sum(r["rejected"].values()) for r in rows[1:]),
                       "seconds": rows[-1]["seconds"]}
                runs.append(run)
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps({"args": vars(args), "runs": runs}, default=float))
                print(f"{scenario:9s} {rule:15s} seed {seed}: rounds to {TARGET:.0%} "
                      f"{rounds_to(run['accuracy'], TARGET)}, final {run['accuracy'][-1]:.4f}, "
                      f"{run['seconds']:.0f} s", flush=True)
    return runs


def summarize(runs: list[dict]) -> list[dict]:
    summary = []
    for scenario in dict.fromkeys(r["scenario"] for r in runs):
        for rule in dict.fromkeys(r["rule"] for r in runs if r["scenario"] == scenario):
            mine = [r for r in runs if r["scenario"] == scenario and r["rule"] == rule]
            first = [rounds_to(r["accuracy"], TARGET) for r in mine]
            smooth = [rounds_to(r["accuracy"], TARGET, SMOOTH) for r in mine]
            mb = {k: np.mean([r["bytes"][k] for r in mine]) / 1e6 for k in mine[0]["bytes"]}
            summary.append({
                "scenario": scenario, "rule": rule, "seeds": [r["seed"] for r in mine],
                "rounds_to_target": first, "mean_rounds_to_target": float(np.mean(first)),
                "rounds_to_target_mean5": smooth, "mean_rounds_to_target_mean5": float(np.mean(smooth)),
                "final_accuracy": float(np.mean([r["accuracy"][-1] for r in mine])),
                "last10_accuracy": float(np.mean([np.mean(r["accuracy"][-10:]) for r in mine])),
                "mean_accuracy_all_rounds": float(np.mean([np.mean(r["accuracy"][1:]) for r in mine])),
                "mb_models": mb["model_down"] + mb["model_up"], "mb_stats_down": mb["stats_down"],
                "mb_stats_up": mb["stats_up"],
                "stats_cpu_seconds": float(np.mean([r["stats_cpu_seconds"] for r in mine]))})
    return summary


def print_table(summary: list[dict], rounds: int) -> None:
    def fmt(values):
        return "/".join("-" if np.isinf(v) else str(int(v)) for v in values)

    print(f"\n{'scenario':9s} {'selection':15s} {'to 95% (seeds)':>15s} {'mean':>6s} {'5-mean to 95%':>14s} "
          f"{'mean':>6s} {'final':>7s} {'last10':>7s} {'all rnds':>8s} {'MB models':>9s} {'MB stats dn':>11s} "
          f"{'MB stats up':>11s} {'stats CPU s':>11s}")
    for s in summary:
        print(f"{s['scenario']:9s} {s['rule']:15s} {fmt(s['rounds_to_target']):>15s} {s['mean_rounds_to_target']:6.1f} "
              f"{fmt(s['rounds_to_target_mean5']):>14s} {s['mean_rounds_to_target_mean5']:6.1f} "
              f"{s['final_accuracy']:7.4f} {s['last10_accuracy']:7.4f} {s['mean_accuracy_all_rounds']:8.4f} "
              f"{s['mb_models']:9.1f} {s['mb_stats_down']:11.1f} {s['mb_stats_up']:11.2f} {s['stats_cpu_seconds']:11.1f}")
    print(f"('-': not reached in {rounds} rounds; a mean with '-' is inf)")
    for scenario in dict.fromkeys(s["scenario"] for s in summary):
        here = [s for s in summary if s["scenario"] == scenario]
        for ours in (s for s in here if s["rule"].startswith("sfedca")):
            for rnd in (s for s in here if s["rule"].startswith("random") and s["seeds"] == ours["seeds"]):
                for key, name in (("rounds_to_target", "first round"), ("rounds_to_target_mean5", "5-round mean")):
                    print(f"{scenario}: {ours['rule']} / {rnd['rule']} rounds to {TARGET:.0%} ({name}) = "
                          f"{_ratio(ours[key], rnd[key], rounds)} (target <= 0.75)")


def _ratio(ours: list[float], theirs: list[float], rounds: int) -> str:
    """Mean rounds of SFedCA over random's. A seed that never reached the target counts as
    rounds + 1, the least it could have needed, which makes that side's mean a lower bound."""
    def mean(values):
        return float(np.mean([rounds + 1 if np.isinf(v) else v for v in values])), int(sum(map(np.isinf, values)))

    (a, miss_a), (b, miss_b) = mean(ours), mean(theirs)
    if miss_a and miss_b:
        return "n/a (both missed it in some seeds)"
    if miss_b:
        return f"<= {a / b:.3f} (random missed it in {miss_b} of {len(theirs)} seeds, counted as {rounds + 1} rounds)"
    if miss_a:
        return f">= {a / b:.3f} (sfedca missed it in {miss_a} of {len(ours)} seeds, counted as {rounds + 1} rounds)"
    return f"{a / b:.3f}"


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
    ap.add_argument("--lr-end", type=float, default=LR_END, help="devices' lr at the last round, share of the first (cosine)")
    ap.add_argument("--explore", type=int, default=EXPLORE, help="sfedca's places per round filled at random")
    ap.add_argument("--target", default="fleet", help="sfedca's class-mix target: fleet or uniform")
    ap.add_argument("--aggregation", default=AGGREGATION, help="updates weighted class-balanced or by windows (FedAvg)")
    ap.add_argument("--out", default="benchmarks/results/fleet_selection")
    ap.add_argument("--summarize", help="re-summarize a JSON written by this script (no runs)")
    args = ap.parse_args()

    from edgesnn.plots import fleet_accuracy

    if args.summarize:
        saved = json.loads(Path(args.summarize).read_text())
        runs, out, rounds = saved["runs"], Path(args.summarize).with_suffix(""), saved["args"]["rounds"]
        saved_args = saved["args"]
    else:
        out = Path(args.out)
        runs, rounds, saved_args = run_all(args, out.with_suffix(".partial.json")), args.rounds, vars(args)
    summary = summarize(runs)
    print_table(summary, rounds)
    curves: dict = {}
    for r in runs:
        curves.setdefault(r["scenario"], {}).setdefault(r["rule"], []).append(r["accuracy"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"args": saved_args, "target": TARGET, "summary": summary,
                                                    "runs": runs}, indent=1, default=float))
    fleet_accuracy(curves, out.with_suffix(".png"), TARGET)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
