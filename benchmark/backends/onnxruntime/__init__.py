"""ONNX Runtime as a measured backend (``srbench run --backend onnxruntime``). Nothing here imports
onnx/onnxruntime at module level: the core install stays small."""
