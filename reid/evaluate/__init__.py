"""Scoring, in one place: the Market-1501 retrieval protocol (``protocol``) and k-reciprocal
re-ranking (``rerank``), tracking metrics against MOTChallenge truth (``tracking``), and the
runner that scores a model file on a Market-format folder (``run``; it loads torch only for
``.pt`` checkpoints, so it is imported by the CLI, never by serving code).

Nothing is imported here: ``from reid.evaluate.protocol import ...`` keeps torch out of every
caller that does not ask for the runner.
"""
