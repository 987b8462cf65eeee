"""Benchmarks of bds at hosting-provider scale: `make bench` (see `bench.run`).

`run` orchestrates and writes BENCHMARKS.md; `infomart` makes the demo Info Mart at a
scale; `measure` holds the measurements, each run in a fresh subprocess so that its
time and peak memory are its own; `report` renders the Markdown. `scheduler` (`make
bench-scheduler`) measures Airflow's own cost per tenant-day through the real scheduler
and writes its own section of BENCHMARKS.md.
"""
