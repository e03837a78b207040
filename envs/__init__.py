"""Where agents act: sandboxes (bwrap, docker, local) and task worlds."""
