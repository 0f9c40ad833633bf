"""Tests of services/oncall/escalation."""
