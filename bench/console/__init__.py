"""`nsentry bench console`: the console's page timings."""
