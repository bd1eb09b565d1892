"""Deployment backends: the deployed network exported once (ONNX) and run outside PyTorch.

* :mod:`.extra`: the optional ``srbench[onnx]`` dependencies, imported with one clear error;
* :mod:`.onnx_export`: the exported file (deployed form, dynamic H/W, metadata, checks);
* :mod:`.ort`: ONNX Runtime sessions on an execution provider, the exported file cached by
  content, and the backend object the runner times;
* :mod:`.agreement`: how far a backend's outputs are from PyTorch's.

Nothing here imports onnx/onnxruntime at module level: the core install stays small.
"""
