"""DeleteAclsRequest and DeleteAclsResponse: package vN holds version N."""
