"""CreateDelegationTokenRequest and CreateDelegationTokenResponse: package vN holds version N."""
