"""The web console: a Kafka client like any other (it speaks to the cluster through
kafkapy.client only), served by uvicorn. `app` has the pages and forms, `reads` and
`browse` what they read from the cluster, `clients` the pool that runs the blocking client
in worker threads, and `values`, `offsets` and `forms` the pure parts: how a value is
shown and filtered, how an offset reset is planned, how a form's fields are read."""
