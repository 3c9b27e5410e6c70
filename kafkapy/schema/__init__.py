"""Kafka's internal record schemas that kio lacks (KRaft metadata records, the records of
`__consumer_offsets` and `__transaction_state`), generated from Apache Kafka's JSON by
`codegen` (see its docstring) in kio's shape, so kio's serial code reads and writes them.

`metadata`, `group_coordinator` and `transaction_coordinator` are generated: one package
per record, a module `vN` per version. `legacy` is generated too: the protocol messages'
versions Kafka 3.9 accepted and kio lacks, in kio's shape, looked up by `wire.protocol`. `versions` (hand-written) loads a version on
demand and moves a record between versions.
"""
