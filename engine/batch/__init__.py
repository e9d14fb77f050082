"""Batch runs over archives: which files, in rotation order, with the window history each
needs, scored one by one. Imports feedback and below (a sibling of live, never importing it).
"""
