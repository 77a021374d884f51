"""The desk API: desks reach the rig through a Temporal Nexus service, from their own namespace."""
