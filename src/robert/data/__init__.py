"""The training data: the simulator's shards in memory, their splits, and what each batch observes."""
