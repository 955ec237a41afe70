"""Wire formats and HTTP plumbing shared by the providers (private)."""
