"""Tools for testing with kafkapy."""
