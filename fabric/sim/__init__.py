"""The simulated Hyper-V fabric: one world of hosts, VMs and moves kept in its own SQLite file,
the demo fabric, and the in-process driver the fast tests use."""
