"""Questions and how they run: a question's arms, conditions and tuning (question), the
selection of each arm's point on validation (selection), the random search (search), the
runner that expands a question into children (runner), and where a child runs (children,
executors: in process, local workers or a Ray cluster).

Imports training and store; knows nothing of answers or the command line.
"""
