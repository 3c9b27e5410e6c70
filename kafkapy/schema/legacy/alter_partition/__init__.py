"""AlterPartitionRequest and AlterPartitionResponse: package vN holds version N."""
