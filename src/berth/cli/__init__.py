"""Thin command layer: parse, call the library, print."""
