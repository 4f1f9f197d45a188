"""One pyinfra @deploy per concern; deploy.py calls them in order."""
