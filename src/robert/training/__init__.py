"""Training (Lightning + MLflow + registry) and evaluation of the RobERt DBN."""
