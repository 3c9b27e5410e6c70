"""The records of Kafka's internal coordinator topics, byte-compatible with Kafka's.

`consumer_offsets` holds the records of `__consumer_offsets`, `transaction_state` those
of `__transaction_state`; `framing` the int16-version framing both share, and the errors
decoding raises.
"""
