"""The generator of `kafkapy/schema/` from Apache Kafka's own JSON, in the manner of kio's
generator for the protocol messages kio holds: kafkapy's internal record schemas, and the
protocol messages' versions that Kafka 3.9 accepted and kio (which follows Kafka 4.x) lacks.

Run it from the repository root on a checkout of Apache Kafka, and on one of Kafka 3.9:

    python -m codegen path/to/kafka --legacy-messages path/to/kafka-3.9

The first rewrites `kafkapy/schema/metadata`, `kafkapy/schema/group_coordinator` and
`kafkapy/schema/transaction_coordinator` (one package per record, a module per version,
a version-free module for a record with several); `--legacy-messages` rewrites
`kafkapy/schema/legacy` (a package per API, one per version with kio's `request` and
`response` modules). Either may be given alone; `--check` writes nothing and fails when
the committed output differs from what would be written (`make lint` runs it given
KAFKA_CHECKOUT and KAFKA_3_9_CHECKOUT). The hand-written modules at the top of
`kafkapy/schema` are left alone. Commit the result; Kafka's JSON itself is not kept here.
"""
