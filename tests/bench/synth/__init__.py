"""Tests of bench/synth: the synthetic operations corpus."""
