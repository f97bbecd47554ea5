"""Data for the pipeline: corpus and NER sources, CoNLL reading and writing, the generated demo data, pretraining
blocks, and the WordPiece tokenizer trained on the corpus."""
