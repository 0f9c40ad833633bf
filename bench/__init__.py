"""ɳSentry's benchmarks and evaluation: the code behind `nsentry bench <name>`.

Kept out of `services/` (the product never imports it): `kit` is the shared
plumbing (scratch database, services run under uvicorn), `ingest`, `resolver`
and `alerts` measure the product against their references, and `nab` holds
the NAB scorer and the `bench nab` runner.
"""
