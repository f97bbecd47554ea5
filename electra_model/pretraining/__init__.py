"""Pretraining ELECTRA: the generator + discriminator model, the training loop, its checkpoints and FLOP counts."""
