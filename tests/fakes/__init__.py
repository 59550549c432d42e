"""Stand-ins for remote paid services, as real HTTP servers on loopback."""
