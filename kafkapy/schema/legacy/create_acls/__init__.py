"""CreateAclsRequest and CreateAclsResponse: package vN holds version N."""
