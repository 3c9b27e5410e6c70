"""ExpireDelegationTokenRequest and ExpireDelegationTokenResponse: package vN holds version N."""
