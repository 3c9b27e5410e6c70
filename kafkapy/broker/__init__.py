"""The services the handlers call: the controller's write path and the broker's side of
its lifecycle. They join the sans-IO cores below to the I/O of the server above."""
