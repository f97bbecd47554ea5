"""Fine-tuning tasks, one package per task: ``ner`` (token classification on CoNLL-style data) and
``classification`` (single texts and text pairs), each with its data reader, head, metrics and reports; the
encoding and post-processing they share with serving are the client's (:mod:`electra_model.client`)."""
