"""AlterReplicaLogDirsRequest and AlterReplicaLogDirsResponse: package vN holds version N."""
