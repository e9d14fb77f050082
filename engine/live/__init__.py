"""The live path: tailing a dump directory exactly once, the pipeline that scores each batch,
snapshots for the UI, replay for the demo, and the session that wires them. Imports feedback and below.
"""
