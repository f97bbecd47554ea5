"""Fine-tuning tasks, one package per task: ``ner`` (token classification on CoNLL-style data) and
``classification`` (single texts and text pairs), each with its data reader, encoding, head, metrics and reports,
and the client's post-processing."""
