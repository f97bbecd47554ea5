"""Sequence classification of single texts and text pairs (SST-2, MNLI-style pairs, a team's own labels).

``data`` reads labelled texts from files and datasets, ``train`` fine-tunes ``ElectraForSequenceClassification``,
``metrics`` scores predictions and lists the most confident mistakes. The torch-free half (encoding and
post-processing) is the client's :mod:`electra_model.client.classifier_encoding`, which training uses too, so both
encode texts identically.
"""
