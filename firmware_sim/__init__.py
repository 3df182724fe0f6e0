"""Integer-only reference of what a microcontroller computes for the quantized networks: the
MRA-SNN (and ssnn's shrinking form with its early exit) and the esvae anomaly detector.

- arith.py: the integer operations (per-channel requantization, arithmetic shifts, int16
  saturation, the sigmoid and exp tables)
- network.py: the integer MRA-SNN and its forward pass (numpy, no torch)
- esvae.py: the integer ESVAE detector (numpy, no torch)
- quantize.py: trained PyTorch network -> integer network (export time; needs the train extra)
- gateway_graph.py: the plain integer MRA-SNN as the fast ONNX graph a gateway runs (int8
  weights, exact uint8 spikes, float32 currents and membranes; the simulator's class on >= 99.9 %
  of real windows, checked at export; needs `onnx`)
- onnx_graph.py: an integer network as an ONNX graph that onnxruntime runs bit for bit like
  the simulator (ssnn's exits, the esvae detector, and any network the gateway graph does not
  match well enough), and the export's check of either graph (export time; needs `onnx`)
- budget.py: flash, RAM, operations, energy and cycle estimates
- c_export.py: the plain integer MRA-SNN as self-contained C99 (export --quantize --c), bit for
  bit the same as network.py
"""
