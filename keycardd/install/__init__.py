"""Putting keycardd in front of agents and under a service manager: agent hook configs, units, doctor checks."""
