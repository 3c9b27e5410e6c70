"""FetchRequest and FetchResponse: package vN holds version N."""
