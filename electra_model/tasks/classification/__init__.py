"""Sequence classification of single texts and text pairs (SST-2, MNLI-style pairs, a team's own labels).

``data`` reads labelled texts from files and datasets, ``train`` fine-tunes ``ElectraForSequenceClassification``,
``metrics`` scores predictions and lists the most confident mistakes, and ``predict`` is the torch-free half
(encoding and post-processing) that the ONNX client shares with training, so both encode texts identically.
"""
