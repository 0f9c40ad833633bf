"""Tests of nself-oncall."""
