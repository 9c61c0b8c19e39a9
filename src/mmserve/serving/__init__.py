"""Ray Serve hosting: one deployment per model role, the ingress app, build_app()."""
