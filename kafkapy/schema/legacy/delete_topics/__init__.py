"""DeleteTopicsRequest and DeleteTopicsResponse: package vN holds version N."""
