"""Tests of services/oncall/delivery."""
