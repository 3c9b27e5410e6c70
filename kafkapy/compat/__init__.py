"""The cross-client compatibility suite: scenarios written once against a small client
adapter interface, each run with every client library in a worker process of its own,
against any broker (`kafkapy compat --bootstrap HOST:PORT`) or kafkapy itself.

    adapters/   the interface (base.py) and one module per client library
    scenarios/  one module per feature area; registry.py says how a scenario is written
    worker.py   runs one (scenario, client) and reports its outcome
    runner.py   runs the matrix, workers in parallel with deadlines, brokers it starts
    reports.py, progress.py, command.py   the reports, the live table, `kafkapy compat`
"""
