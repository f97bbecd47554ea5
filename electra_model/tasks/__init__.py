"""Task adapters: each fine-tuning task (token classification, sequence classification) as a room of its own,
with its data reader, encoding, head, metrics and reports, and the client's post-processing."""
