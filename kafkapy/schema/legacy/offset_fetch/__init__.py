"""OffsetFetchRequest and OffsetFetchResponse: package vN holds version N."""
