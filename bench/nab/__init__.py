"""NAB evaluation: `scorer` is NAB's scoring, `runner` the `nsentry bench nab` command."""
