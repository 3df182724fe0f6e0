"""Fleet-wide federated retraining on Flower, with SFedCA client selection (README "Fleet").

  config.py     a fleet run's settings (FleetConfig), read without torch or Flower
  partition.py  how a fleet's local data is cut from the CWRU training region (simulation)
  activity.py   firing-rate state of a model on local data, and the SFedCA credit
  selection.py  which clients train in a round: sfedca, random (FedAvg), power-of-choice
  aggregation.py how the round's accepted updates are weighted: balanced classes, or window counts
  strategy.py   the Flower strategy: query, select, train, screen updates, aggregate, count bytes
  client_app.py the Flower ClientApp (query / train messages) a device runs
  server_app.py the Flower ServerApp (strategy + test-region evaluation + model export)
"""

# SFedCA's places per round drawn at random by default (README "Fleet" has the measurements).
EXPLORE = 1
# How the accepted updates of a round are weighted: "windows" (FedAvg: by window count) or
# "balanced" (every class the round's devices hold weighs alike; aggregation.py). README "Fleet".
AGGREGATION = "balanced"
# The devices' learning rate at the last round as a share of the first (half cosine between).
LR_END = 0.1
