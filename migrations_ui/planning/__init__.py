"""Planning many moves: where each VM goes and when each move runs (pure), and the inventory adapter."""
