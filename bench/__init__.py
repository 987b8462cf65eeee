"""Benchmarks of bds at hosting-provider scale: `make bench` (see `bench.run`).

`run` orchestrates and writes BENCHMARKS.md; `infomart` makes the demo Info Mart at a
scale; `measure` holds the measurements, each run in a fresh subprocess so that its
time and peak memory are its own; `report` renders the Markdown.
"""
