"""OffsetForLeaderEpochRequest and OffsetForLeaderEpochResponse: package vN holds version N."""
