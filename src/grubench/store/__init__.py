"""The MLflow store: where runs go (tracking), their tags and metric keys (schema), the
leases that keep two drivers off one child (leases), and the saved UI views (views).

Imports the layers below it only: options. Used by training, sweeps and answers.
"""
