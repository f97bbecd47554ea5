"""Named-entity recognition: encoding words for the model, fine-tuning, decoding tags, scoring and error analysis.

The torch-free pieces (``encoding``, ``tag_decoding``, ``text_words``) are shipped by the light client too."""
