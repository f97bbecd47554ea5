"""Serving through MLflow: the registered model's pyfunc and a local scoring server for tests and load tests.

Both need mlflow, so they stay out of the torch-free client (:mod:`electra_model.client`), which they use to load
and run the exported model."""
