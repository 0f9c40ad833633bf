"""Tests of services/oncall/graphql."""
