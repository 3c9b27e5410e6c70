"""Partition replication, sans-IO: each hosted partition's role, epochs, ISR and high
watermark, and the follower's decisions on what its leader answers."""
