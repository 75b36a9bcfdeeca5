"""Members of an account: listing, inviting, changing roles and removing, by the rules of DESIGN §8."""
