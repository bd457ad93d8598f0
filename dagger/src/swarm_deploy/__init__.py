"""swarm-deploy: blue/green deploys of a multi-service app to Docker Swarm, one stack per branch."""

__version__ = "0.1.0"
