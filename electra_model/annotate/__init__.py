"""Labelling your own data in Label Studio: push texts with the champion's predictions as pre-annotations, pull the
finished annotations back as the task's own data files (README, "Labelling your own data")."""
