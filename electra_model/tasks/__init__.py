"""Fine-tuning tasks, one package per task (``ner``: token classification on CoNLL-style data)."""
