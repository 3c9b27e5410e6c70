"""DescribeAclsRequest and DescribeAclsResponse: package vN holds version N."""
