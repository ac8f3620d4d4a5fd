"""Biometric evaluation: score arrays from embeddings, verification and identification rates, the ROC plot.

Pure numpy (and matplotlib for the plot): nothing here touches torch, ONNX Runtime, HTTP or SQL, so the
`facerec eval` / `facerec calibrate` commands can run it on embeddings they already have.
"""
