"""The nfdump filter language: parse, compile to polars expressions, format. Imports only core.
"""
