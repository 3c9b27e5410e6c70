"""CreateTopicsRequest and CreateTopicsResponse: package vN holds version N."""
