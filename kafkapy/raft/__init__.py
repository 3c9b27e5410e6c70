"""The metadata quorum: replicates an ordered log of opaque records.

It knows nothing of topics. Today the quorum is a single voter (`LocalQuorum`): a
record is committed once it is durable in the local metadata log. A Raft quorum of
several voters will offer the same two operations.
"""
