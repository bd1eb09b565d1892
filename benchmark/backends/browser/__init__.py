"""Running exported models in a real browser: ONNX Runtime Web served from 127.0.0.1 and
driven through Playwright (the ``browser`` backend, the web export and the report test)."""
