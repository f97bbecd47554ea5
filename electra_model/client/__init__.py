"""The torch-free client: everything needed to run an exported model on onnxruntime, and nothing that trains one.

``exported`` opens the directory the export stage writes (files, variants, sessions, ``models:/`` URIs as local
directories), ``store`` finds the MLflow store and resolves registry URIs (mlflow imported only inside the functions
that read a registry), ``ner`` and ``classifier`` are the predictors with the encoders and decoders they share with
training (``ner_encoding``, ``tag_decoding``, ``text_words``, ``classifier_encoding``), and ``loader`` picks the
predictor an exported model names. Nothing here imports torch, transformers, mlflow (at import), prefect or dvc,
so the light client wheel (client/pyproject.toml) ships this folder as it is, and the rest of the library imports
from it, never the other way round.
"""
