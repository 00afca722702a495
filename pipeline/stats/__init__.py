"""Stats: what stored events mean (Plausible's metrics, unusual traffic and insights)."""
