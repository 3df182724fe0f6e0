"""Which clients train in a round. Each rule returns at most `m` client ids.

  random           uniform sample (FedAvg, arXiv 1602.05629)
  power_of_choice  query d random candidates for the global model's loss on their data, take the
                   m with the highest loss (Cho et al., arXiv 2010.01243)
  sfedca           credit-aware, balanced selection (SFedCA, arXiv 2406.12200), below

SFedCA, as edgesnn formulates it. For every client k the server holds:
  n_k        its number of local windows
  q_k        its estimated class mix: the output-class firing state of its own locally trained
             model on its data if it trained before, else that of the global model
  c_k        its credit (activity.credit): after-state of its last local model against the fresh
             before-state of the global model; clients that never trained get the largest known
             credit (optimism: they are explored)
Greedily, m times, add the client that maximises
  J(S) = credit_weight * mean_{k in S} c_k / max_j c_j  -  TV(sum_S w_k q_k / sum_S w_k, pi)
i.e. clients that carry what the global model lacks, chosen so that the data behind the round's
average has the class mix pi; w_k are the weights the average will give them (aggregation.py;
n_k under FedAvg). target "fleet": pi = sum_k n_k q_k / sum_k n_k, the whole fleet's estimated
mix (a round that looks like the fleet); "uniform": every class alike. With `explore` = e > 0,
the greedy fills m - e places and the last e go to clients drawn uniformly from the rest
(epsilon-greedy: estimates of clients the greedy passes over are refreshed). README "Fleet" has the
measurements that chose the default. No label or label count reaches the server: q_k comes from
model outputs (an estimate of the class mix, by design).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.fleet import AGGREGATION, EXPLORE
from edgesnn.fleet.activity import credit
from edgesnn.fleet.aggregation import AGGREGATIONS, aggregated_mix

RULES = ("sfedca", "random", "power_of_choice")


@dataclass
class ClientView:
    """What the server knows about one client at selection time."""

    n: int
    before: dict[str, np.ndarray]  # firing state of the current global model on its data
    after: dict[str, np.ndarray] | None = None  # firing state of its last local model


def random_selection(ids: list[int], m: int, rng: np.random.Generator) -> list[int]:
    # Indices, not ids: Flower's 64-bit node ids do not survive numpy's integer conversion.
    return [ids[i] for i in rng.choice(len(ids), size=min(m, len(ids)), replace=False)]


def power_of_choice(losses: dict[int, float], m: int) -> list[int]:
    return sorted(losses, key=lambda k: -losses[k])[:m]


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())


def _class_mix(view: ClientView) -> np.ndarray:
    q = (view.after if view.after is not None else view.before)["output"].astype(np.float64)
    return q / q.sum()


def sfedca_scores(views: dict[int, ClientView]) -> dict[int, float]:
    """Credits c_k, unknown ones filled optimistically with the largest known credit."""
    known = {k: credit(v.after, v.before) for k, v in views.items() if v.after is not None}
    fill = max(known.values()) if known else 1.0
    return {k: known.get(k, fill) for k in views}


TARGETS = ("fleet", "uniform")


@dataclass
class SelectionSettings:
    """A fleet's selection and aggregation, refused in one line when impossible (the command
    line checks them here before torch and Flower are imported)."""

    rule: str = "sfedca"
    clients_per_round: int = 4
    candidates: int = 8  # power_of_choice's d
    credit_weight: float = 1.0  # sfedca: credit against balance
    target: str = "fleet"  # sfedca: the class mix a round aims at (TARGETS)
    explore: int = EXPLORE  # sfedca: places a round fills at random (epsilon-greedy)
    norm_factor: float = 5.0
    aggregation: str = AGGREGATION  # how accepted updates are weighted (AGGREGATIONS)
    seed: int = 0

    def __post_init__(self):
        if self.rule not in RULES:
            raise EdgesnnError(f"unknown selection {self.rule!r}; use one of {', '.join(RULES)}")
        if self.target not in TARGETS:
            raise EdgesnnError(f"unknown SFedCA target {self.target!r}; use one of {', '.join(TARGETS)}")
        if self.aggregation not in AGGREGATIONS:
            raise EdgesnnError(f"unknown aggregation {self.aggregation!r}; use one of {', '.join(AGGREGATIONS)}")
        if not 0 <= self.explore <= self.clients_per_round:
            raise EdgesnnError(f"explore must be 0..{self.clients_per_round} (clients per round), not {self.explore}")


def sfedca_selection(views: dict[int, ClientView], m: int, credit_weight: float = 1.0,
                     target: str = "fleet", explore: int = 0, rng: np.random.Generator | None = None,
                     aggregation: str = "windows") -> list[int]:
    ids = list(views)
    credits = sfedca_scores(views)
    top = max(credits.values()) or 1.0
    c = {k: credits[k] / top for k in ids}
    n = {k: float(views[k].n) for k in ids}
    mix = {k: _class_mix(views[k]) for k in ids}
    if target == "fleet":
        pi = sum(n[k] * mix[k] for k in ids) / sum(n.values())
    else:
        pi = np.full(len(mix[ids[0]]), 1.0 / len(mix[ids[0]]))
    chosen: list[int] = []
    while len(chosen) < min(m - explore, len(ids)):
        def gain(k):
            s = chosen + [k]
            pooled = aggregated_mix(aggregation, [n[j] for j in s], [mix[j] for j in s])
            return credit_weight * np.mean([c[j] for j in s]) - _tv(pooled, pi)
        chosen.append(max((k for k in ids if k not in chosen), key=gain))
    if explore:
        chosen += random_selection([k for k in ids if k not in chosen], explore, rng or np.random.default_rng())
    return chosen
