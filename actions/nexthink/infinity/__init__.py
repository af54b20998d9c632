"""Nexthink Infinity: OAuth2 token, the Remote Actions API and the NQL API."""
