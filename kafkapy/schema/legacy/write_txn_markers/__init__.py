"""WriteTxnMarkersRequest and WriteTxnMarkersResponse: package vN holds version N."""
