"""One run: its config and lifecycle (fit), the LightningModule (module), the DataModule
(data), gradient and gate diagnostics (diagnostics), checkpoints and signals (resume).

Imports tasks, models and store; knows nothing of sweeps or answers.
"""
