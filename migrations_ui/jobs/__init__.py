"""Migration jobs: creating them, admitting them to hosts' slots, running them in workers, recovering them."""
