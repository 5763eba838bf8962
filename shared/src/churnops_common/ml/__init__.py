"""Modelling contract shared by the trainer (writes it) and the scorer (reads it)."""
