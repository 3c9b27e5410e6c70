"""ListOffsetsRequest and ListOffsetsResponse: package vN holds version N."""
