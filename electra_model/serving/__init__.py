"""Serving without torch: the onnxruntime predictor, the registry client, the MLflow pyfunc and a local model server.

``predictor`` and ``registry_client`` need only onnxruntime, tokenizers and numpy (mlflow to read a registry); the
light client (client/pyproject.toml) ships them."""
