"""Answers from the store: interval statistics (stats), a question's report, tables and
plots (report), hyperparameter importance (importance), the README's generated blocks (docs).

Reads the store only, never a fit's in-memory results; imports sweeps, training and store.
"""
