"""The synthetic operations corpus: `nsentry bench synth` (see docs/benchmarks.md).

`shapes` holds the signal and its building blocks (cycles, noise, scheduled
jobs), `recipes` the base signal of each kind of metric, `anomalies` the
labelled anomalies, `series` one seeded file and its NAB windows, `corpus`
the catalogue of files, and `runner` writes the corpus (`write_corpus`) and
is the command.
"""
