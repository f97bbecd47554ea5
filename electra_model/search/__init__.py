"""Hyper-parameter search: the search space in params.yaml, checked and sampled (space), and `electra tune` (command).

The driver that runs trials as DVC experiments is flows/tune.py: the library imports neither dvc nor prefect."""
