"""Analysts' answers: the label store, labels files, vector keys, suppression of relabelled
flows, training targets and retraining. Imports models and below.
"""
