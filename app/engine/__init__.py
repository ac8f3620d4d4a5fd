"""The face engine: everything that touches torch or ONNX Runtime, and nothing else does.

Decoding untrusted upload bytes, the Detector and Embedder protocols with one backend per
device (ONNX Runtime on the CPU, torch on CUDA), the export cache, weights, batching and the
inference pool. It imports neither FastAPI nor SQLAlchemy, and its heavy calls are blocking:
callers run them in the inference pool.
"""
