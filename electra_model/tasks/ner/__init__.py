"""Named-entity recognition: fine-tuning, heads, scoring and error analysis.

The torch-free pieces training shares with serving (word encoding, tag decoding, cutting text into words) live in
the client (:mod:`electra_model.client.ner_encoding`, ``tag_decoding``, ``text_words``), which the light client
ships."""
