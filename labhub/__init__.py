"""labhub: provision a research lab's multi-user JupyterHub host with pyinfra."""
