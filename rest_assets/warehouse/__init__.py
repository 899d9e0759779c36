"""Where data lands: the dlt destination, its lock and the one-transaction load per run."""
