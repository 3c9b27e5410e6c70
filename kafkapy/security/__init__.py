"""Who a connection is: principals from TLS client certificates (and, later, SASL), and the
decisions an authorizer makes about them. Plain objects; no I/O."""
