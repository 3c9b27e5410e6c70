"""Console tools of the `kafkapy` command."""
