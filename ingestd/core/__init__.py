"""The daemon and what it runs: discovery, the claim loop, processing one file, key order and
publishing in order. Written against `ingestd.contracts` only; no backend is imported here.
"""
