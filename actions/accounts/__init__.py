"""Sign-in: OpenID Connect (the company account), local passwords (demo and break-glass), an SSO
proxy's header, the directory's groups, and the session limits. The provider's HTTP is in actions/integrations/oidc_provider.py."""
