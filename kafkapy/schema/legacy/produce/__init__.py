"""ProduceRequest and ProduceResponse: package vN holds version N."""
