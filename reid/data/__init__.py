"""Dataset readers: Market-1501 folders and MOTChallenge files (numpy only, no torch)."""
