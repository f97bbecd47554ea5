"""ELECTRA pretraining and NER fine-tuning: the library every pipeline stage calls.

This package computes; it never imports prefect or dvc. Stages (``stages/``) read params and call it,
flows (``flows/``) run the stages through ``dvc repro``.

Importing it turns onnxruntime's telemetry off (``ORT_DISABLE_TELEMETRY=1``) unless the environment already says
otherwise: onnxruntime 1.32 otherwise writes a device id and an event queue under ``~/.cache/Microsoft`` for every
process that opens a session. onnxruntime reads the variable when it is first imported, so this module sets it
before any of its submodules imports onnxruntime (``onnxruntime.disable_telemetry_events()`` after the import is too
late for those files). This file ships in the light client wheel too.
"""

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from electra_model.errors import ElectraError  # noqa: E402  (after the telemetry switch, on purpose)

__all__ = ["ElectraError"]
