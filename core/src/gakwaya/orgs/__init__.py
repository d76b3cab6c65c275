"""Organizations, members, invitations and roles."""
