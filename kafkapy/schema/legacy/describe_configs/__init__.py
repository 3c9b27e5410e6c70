"""DescribeConfigsRequest and DescribeConfigsResponse: package vN holds version N."""
