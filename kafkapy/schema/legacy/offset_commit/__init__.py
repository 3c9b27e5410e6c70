"""OffsetCommitRequest and OffsetCommitResponse: package vN holds version N."""
