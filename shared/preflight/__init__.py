"""Whether a deployment is fit to run: the ARM actions the warden performs, and the doctor's
judgements of what a real deployment grants. Pure."""
