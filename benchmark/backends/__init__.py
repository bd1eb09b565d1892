"""Backends: where a model runs and how it is called (PyTorch eager, ONNX Runtime, the browser),
with devices, tiling, the ONNX export and its agreement with PyTorch, shared by the exported backends."""
