"""The MLflow record: runs per pipeline and stage (``runs``), registration behind the quality gate (``registry``)
and reconciling the registry with what DVC exported (``registry_sync``)."""
