"""A crash-consistency checker in the style of ALICE and CrashMonkey: record what the
broker does to its files during a workload (trace), build the states a power failure
could leave (states), start the broker's recovery on each and check what it finds
(check)."""
