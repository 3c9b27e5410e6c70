"""Coordinators as sans-IO state machines: requests and clock ticks in; responses and
records to append out."""
