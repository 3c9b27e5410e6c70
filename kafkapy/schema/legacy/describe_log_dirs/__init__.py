"""DescribeLogDirsRequest and DescribeLogDirsResponse: package vN holds version N."""
