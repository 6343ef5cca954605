"""What the nodes say and what a security team reads: sshd's output judged, the compliance
report, its query and its page. Pure."""
