"""The generator of kafkapy's internal record schemas (`kafkapy/schema/`), from Apache
Kafka's own JSON, in the manner of kio's generator for the protocol messages kio holds.

Run it from the repository root on a checkout of Apache Kafka:

    python -m codegen path/to/kafka

It rewrites `kafkapy/schema/metadata`, `kafkapy/schema/group_coordinator` and
`kafkapy/schema/transaction_coordinator` (one package per record, a module per version,
a version-free module for a record with several), and leaves the hand-written modules at
the top of `kafkapy/schema` alone. Commit the result; Kafka's JSON itself is not kept here.
"""
