"""RenewDelegationTokenRequest and RenewDelegationTokenResponse: package vN holds version N."""
