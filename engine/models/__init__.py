"""Model files: safe persistence (skops with an allow-list) and the registry that decides which
model is current. Imports detect and below.
"""
