"""DescribeDelegationTokenRequest and DescribeDelegationTokenResponse: package vN holds version N."""
