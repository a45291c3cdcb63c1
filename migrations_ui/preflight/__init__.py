"""Pre-flight: the facts of a proposed move, the rules on them, the transfer type, and the inventory adapter."""
