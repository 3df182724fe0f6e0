"""Integer-only reference of what a microcontroller computes for the quantized MRA-SNN.

- arith.py: the integer operations (per-channel requantization, arithmetic shifts, int16
  saturation, the sigmoid table)
- network.py: the integer network and its forward pass (numpy, no torch)
- quantize.py: trained PyTorch MRA-SNN -> integer network (export time; needs the train extra)
- onnx_graph.py: the integer network as an ONNX graph that onnxruntime runs bit for bit like
  network.py (export time; needs `onnx`)
- budget.py: flash, RAM, operations, energy and cycle estimates
- c_export.py: the integer network as self-contained C99 (export --quantize --c), bit for bit
  the same as network.py
"""
