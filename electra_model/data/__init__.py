"""Data for the pipeline: corpus and NER sources, CoNLL reading and writing, and the generated demo data."""
