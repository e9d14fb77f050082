"""From flows to verdicts: features, rules, the Detector, outlier models, scorers, evaluation,
per-source summaries. Imports config and below.
"""
