"""The synthetic operations corpus: `nsentry bench synth` (see docs/benchmarks.md).

`shapes` makes the base signals (cycles, trends, noise, benign recurring
jobs), `anomalies` injects the labelled anomalies, `series` generates one
seeded file and its NAB windows, `corpus` is the catalogue of files, and
`runner` writes the corpus (`write_corpus`) and is the command.
"""
