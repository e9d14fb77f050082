"""Leaf layer: the flow schema and label vocabulary, errors, sanitising untrusted text, dump
file naming and compression, the DNS roles of a flow, writing frames. Imports no other layer.
"""
