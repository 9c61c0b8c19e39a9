"""Deploying the app: everything between a config file and a running Serve application.

* :mod:`.session` -- :class:`~mmserve.deploy.session.ServeSession`: check, start or join Ray,
  deploy, wait until ready, stop (``mmserve serve``);
* :mod:`.preflight` -- checks that run before Ray starts (sources, plugins, workflows);
* :mod:`.capacity` / :mod:`.capacity_table` -- does the plan fit the cluster, and the table
  that says why not;
* :mod:`.serve_config` -- ``mmserve build``: Serve config files and a KubeRay RayService;
* :mod:`.front_door` -- Serve's Python proxy or its HAProxy ingress (``server.proxy``).
"""
